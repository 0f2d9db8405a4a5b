#!/usr/bin/env bash
# Runs every Go fuzz target of the module for the given time (default 5s) each.
#
# A target fails when go test fails, with one exception: Go's fuzz coordinator can
# report a bare "context deadline exceeded" as -fuzztime ends (golang/go#75804, fixed in
# Go 1.27), with no failing input. A real failure always writes its input under
# testdata/fuzz/<target>/, so a deadline error without a new file there is reported and
# run once more, and only a second such error in a row fails.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}
found=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# inputs DIR TARGET: how many failing inputs the target has under testdata/fuzz.
inputs() { find "$1/testdata/fuzz/$2" -type f 2>/dev/null | wc -l; }

# fuzz_once DIR TARGET: 0 pass, 1 failure, 2 the coordinator's deadline race.
fuzz_once() {
	local dir=$1 target=$2 before
	before=$(inputs "$dir" "$target")
	if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "./$dir" 2>&1 | tee "$out"; then
		return 0
	fi
	if [ "$(inputs "$dir" "$target")" = "$before" ] && grep -q '^    context deadline exceeded$' "$out" &&
		! grep -q 'Failing input written to' "$out"; then
		return 2
	fi
	return 1
}

while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
		found=1
		echo "fuzz $dir $target ($fuzztime)"
		rc=0
		fuzz_once "$dir" "$target" || rc=$?
		if [ "$rc" = 2 ]; then
			echo "fuzz: $target: Go's fuzztime deadline race (golang/go#75804), no failing input; running it again"
			rc=0
			fuzz_once "$dir" "$target" || rc=$?
		fi
		if [ "$rc" != 0 ]; then
			echo "fuzz: $target failed (see above)" >&2
			exit 1
		fi
	done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' || true)
[ "$found" = 1 ] || echo "no fuzz targets"
