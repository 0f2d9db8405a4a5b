#!/usr/bin/env bash
# Installs what the tests need into $STWBRIDGE_TOOLS (default .tools/), once.
#   scripts/tools.sh all    everything
#   scripts/tools.sh NAME   one of: otelcol, workerd, apt
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${STWBRIDGE_TOOLS:-$PWD/.tools}
mkdir -p "$TOOLS/bin"

otelcol() {
	# A real OpenTelemetry Collector, built from its Go modules in its own module.
	local bin=$TOOLS/bin/otelcol
	local stamp
	stamp=$(cat internal/tools/otelcol/go.mod internal/tools/otelcol/*.go 2>/dev/null | sha256sum | cut -c1-16)
	if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$stamp" ]; then return; fi
	[ -f internal/tools/otelcol/go.mod ] || return 0
	echo "tools: building the OpenTelemetry Collector (once)"
	(cd internal/tools/otelcol && go build -o "$bin" .)
	echo "$stamp" > "$bin.stamp"
}

# WORKERD_VERSION is the workerd release the tests run (the one that produced
# ../shared/testdata/workerd-stw-sample.ndjson).
WORKERD_VERSION=1.20261117.1

workerd() {
	# Real workerd from npm, into $TOOLS/workerd (ignored by git); the binary ends up at
	# $TOOLS/workerd/node_modules/@cloudflare/workerd-linux-64/bin/workerd.
	local dir=$TOOLS/workerd
	local bin=$dir/node_modules/@cloudflare/workerd-linux-64/bin/workerd
	if [ -x "$bin" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$WORKERD_VERSION" ]; then return; fi
	command -v npm >/dev/null || { echo "tools: npm is needed to install workerd (apt-get install npm)" >&2; return 1; }
	echo "tools: installing @cloudflare/workerd-linux-64@$WORKERD_VERSION (once)"
	mkdir -p "$dir"
	[ -f "$dir/package.json" ] || echo '{"name":"stwbridge-tools","private":true}' > "$dir/package.json"
	npm install --prefix "$dir" --no-audit --no-fund --silent --save-exact \
		"@cloudflare/workerd-linux-64@$WORKERD_VERSION"
	[ -x "$bin" ] || { echo "tools: workerd binary missing after npm install: $bin" >&2; return 1; }
	echo "$WORKERD_VERSION" > "$dir/version"
}

apt() {
	# Debian tools the tests drive: tmux (the tail UI test), docker-compose (compose check),
	# chromium (the live web view's browser test, internal/webui).
	local missing=()
	command -v tmux >/dev/null || missing+=(tmux)
	command -v chromium >/dev/null || missing+=(chromium)
	command -v docker-compose >/dev/null || missing+=(docker-compose)
	[ ${#missing[@]} -eq 0 ] && return
	echo "tools: apt-get install ${missing[*]}"
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

case "${1:-all}" in
all) apt; otelcol; workerd ;;
*) "$1" ;;
esac
