#!/usr/bin/env bash
# Load benchmark: stwbridge against the real OpenTelemetry Collector on the same load,
# in one run, printing go-bench-format lines (attributed to pkg dir "load").
#
#   BenchmarkForwarder/stwbridge   spans/s/core (spans forwarded per CPU second of the
#                                  forwarder process), rss-MiB (its peak RSS); its defaults
#   BenchmarkForwarder/stwbridge-gzip   the same with gzip downstream, as the Collector
#   BenchmarkForwarder/stwbridge-v11   the same, each span as one protocol 1.1 stw.span
#   BenchmarkForwarder/collector   the same for the Collector (otlpreceiver → batch →
#                                  otlpexporter), fed the same spans as plain OTLP
#   BenchmarkForwarder/otelcol-stw the Collector with the stw connector, lifecycle events in
#   BenchmarkForwarder/stwbridge-v11-spec, collector-spec   stwbridge (stw.span records,
#                                  each alone in its stream) and the Collector on the
#                                  OpenTelemetry benchmark's span: one a trace, 10
#                                  attributes of 20 characters
#   BenchmarkForwarder/grpc-floor  a gRPC server that answers every export unread
#                                  (stwload sink --discard), fed the stwbridge-v11 load:
#                                  the transport's share, paid by every forwarder
#   BenchmarkOpenVisibility/stwbridge-10k   p99-ms / p50-ms from a span's start to its
#                                  stw.span_open at the downstream sink, 10k spans/s,
#                                  forward_events on
#
# stwload generates the load (stwbridge: SpanOpen + SpanEnd per span over OTLP/gRPC;
# Collector: the same spans as OTLP traces) and is the counting sink. CPU time is read
# from /proc/PID/stat (utime + stime) from the start of the load until the sink has
# every span. The three forwarder runs alternate for LOADBENCH_ROUNDS rounds (default 3),
# so that a drift of the machine's speed hits each alike; the report takes the median
# of each. Environment: LOADBENCH_RATE (spans/s, default 20000), LOADBENCH_DURATION
# (default 8s), LOADBENCH_ROUNDS (default 3), LOADBENCH_VIS_DURATION (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${STWBRIDGE_TOOLS:-$PWD/.tools}
OTELCOL=$TOOLS/bin/otelcol
RATE=${LOADBENCH_RATE:-20000}
DURATION=${LOADBENCH_DURATION:-8s}
ROUNDS=${LOADBENCH_ROUNDS:-3}
VIS_DURATION=${LOADBENCH_VIS_DURATION:-10s}
[ -x "$OTELCOL" ] || { echo "loadbench: $OTELCOL missing; run make tools" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "loadbench: building stwbridge and stwload" >&2
go build -o "$work/stwbridge" ./cmd/stwbridge
go build -o "$work/stwload" ./cmd/stwload
# otelcol-stw: a Collector with the stw connector (collector/, a module of its own).
(cd collector && go build -o "$work/otelcol-stw" ./cmd/otelcol-stw)
LOAD=$work/stwload
TCK=$(getconf CLK_TCK)

# cpu_ticks PID: user + system CPU time of the process, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# peak_rss_kib PID: the process's peak resident set size.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# stat FILE KEY: a key=value figure of the sink's stats file.
stat() { tr ' ' '\n' < "$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# round is the current round; a run's files are named NAME.ROUND.
round=1

# start_sink NAME [sink flags]: runs a counting sink; sets SINK_PID, SINK_ADDR, SINK_STATS.
start_sink() {
	local f=$work/$1.$round
	shift
	SINK_STATS=$f.stats
	"$LOAD" sink --addr-file "$f.addr" --stats-file "$SINK_STATS" "$@" > "$f.final" 2>&1 &
	SINK_PID=$!
	pids+=("$SINK_PID")
	for _ in $(seq 100); do [ -s "$f.addr" ] && [ -s "$SINK_STATS" ] && break; sleep 0.05; done
	SINK_ADDR=$(cat "$f.addr")
}

# stop_sink: ends the sink; its final report (with latency percentiles) is in $SINK_STATS.
stop_sink() {
	kill -INT "$SINK_PID"
	wait "$SINK_PID" 2>/dev/null || true
}

# wait_listen ADDR: waits until something accepts connections on ADDR.
wait_listen() {
	local host=${1%:*} port=${1##*:}
	for _ in $(seq 600); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "loadbench: nothing listens on $1" >&2
	return 1
}

# wait_spans N SECONDS [KEY]: waits until the sink counted N spans (or N of KEY).
wait_spans() {
	local want=$1 deadline=$((SECONDS + $2)) key=${3:-spans} got
	while :; do
		got=$(stat "$SINK_STATS" "$key")
		[ "${got:-0}" -ge "$want" ] && return 0
		if [ $SECONDS -ge $deadline ]; then
			echo "loadbench: the sink got ${got:-0} of $want $key" >&2
			return 1
		fi
		sleep 0.05
	done
}

# measure NAME PID MODE ENDPOINT [extra send args]: runs the load into the forwarder
# PID and prints its benchmark line. With DISCARD=1 the PID is a discarding sink
# itself: it is measured until it answered every request, and credited the spans sent.
measure() {
	local name=$1 pid=$2 mode=$3 endpoint=$4
	shift 4
	local before after sent spans ticks rss send=$work/$name.$round.send
	before=$(cpu_ticks "$pid")
	"$LOAD" send --endpoint "$endpoint" --mode "$mode" --rate "$RATE" --duration "$DURATION" "$@" > "$send"
	sent=$(sed -n 's/^stwload: sent \([0-9]*\) spans.*/\1/p' "$send")
	if [ "${DISCARD:-0}" = 1 ]; then
		wait_spans "$(sed -n 's/.*requests \([0-9]*\),.*/\1/p' "$send")" 60 requests
		spans=$sent
	else
		wait_spans "$sent" 60
		spans=$(stat "$SINK_STATS" spans)
	fi
	after=$(cpu_ticks "$pid")
	rss=$(peak_rss_kib "$pid")
	ticks=$((after - before))
	[ "$ticks" -gt 0 ] || ticks=1
	echo "loadbench: $name (round $round of $ROUNDS): $(cat "$send"); sink: $(cat "$SINK_STATS"); CPU $(awk -v t="$ticks" -v h="$TCK" 'BEGIN { printf "%.2f", t / h }') s" >&2
	awk -v n="$name" -v s="$spans" -v t="$ticks" -v h="$TCK" -v r="$rss" \
		'BEGIN { printf "BenchmarkForwarder/%s\t1\t%.0f spans/s/core\t%.1f rss-MiB\n", n, s / (t / h), r / 1024 }'
}

echo "loadbench: $RATE spans/s for $DURATION, 4 spans per trace (-spec runs: 1), $ROUNDS rounds; CPU: $(nproc) cores" >&2

# shape_args NAME: the load generator's shape for a run: a NAME ending in -spec sends
# the OpenTelemetry benchmark's span (one span a trace, 10 attributes of 20 characters),
# the others web requests of 4 spans.
shape_args() { [[ $1 == *-spec ]] && echo "--shape spec" || echo "--shape web"; }

# bridge_run NAME [flags]: stwbridge (flags added) forwarding the load to a fresh sink.
# A NAME with -v11 sends each span as one protocol 1.1 stw.span record.
bridge_run() {
	local name=$1 mode=events
	shift
	[[ $name == *-v11* ]] && mode=complete
	start_sink "$name"
	local addr
	addr=$("$LOAD" freeport)
	"$work/stwbridge" --listen "$addr" --http-listen "$("$LOAD" freeport)" \
		--forward "http://$SINK_ADDR" --log-level warn "$@" 2> "$work/$name.$round.log" &
	local pid=$!
	pids+=("$pid")
	wait_listen "$addr"
	# shellcheck disable=SC2046 # two words: the flag and its value
	measure "$name" "$pid" "$mode" "$addr" $(shape_args "$name")
	kill -TERM "$pid"
	wait "$pid" || true
	stop_sink
}

printf 'exporter:\n  compression: gzip\n' > "$work/gzip.yaml"

# otelcol_run NAME BINARY MODE EXTRA PIPELINES: a Collector (BINARY) with an otlp
# receiver, the batch processor and an OTLP exporter to a fresh sink, fed the load in
# MODE. EXTRA is more top-level YAML (connectors, say; may be empty), PIPELINES its
# service pipelines (indented for "pipelines:").
otelcol_run() {
	local name=$1 bin=$2 mode=$3 extra=$4 pipelines=$5
	start_sink "$name"
	local addr pid
	addr=$("$LOAD" freeport)
	cat > "$work/$name.$round.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "$addr"
$extra
processors:
  batch:
exporters:
  otlp_grpc:
    endpoint: "$SINK_ADDR"
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
$pipelines
YAML
	"$bin" --config "file:$work/$name.$round.yaml" > "$work/$name.$round.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_listen "$addr"
	# shellcheck disable=SC2046 # two words: the flag and its value
	measure "$name" "$pid" "$mode" "$addr" $(shape_args "$name")
	kill -TERM "$pid"
	wait "$pid" || true
	stop_sink
}

# collector_run [NAME]: the Collector forwarding the same spans as plain OTLP traces
# (its defaults: batch processor, OTLP exporter with its sending queue and gzip).
collector_run() {
	otelcol_run "${1:-collector}" "$OTELCOL" spans "" "    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_grpc]"
}

# connector_run: otelcol-stw, the Collector with the stw connector, on the same
# lifecycle events as stwbridge: otlp receiver (logs) -> stw -> batch -> otlp_grpc.
connector_run() {
	otelcol_run otelcol-stw "$work/otelcol-stw" events "connectors:
  stw:" "    logs:
      receivers: [otlp]
      exporters: [stw]
    traces:
      receivers: [stw]
      processors: [batch]
      exporters: [otlp_grpc]"
}

# floor_run: the least a gRPC server spends on this load: `stwload sink --discard`
# answers every export unread (protocol 1.1 records of the loadbench shape).
floor_run() {
	start_sink grpc-floor --discard
	# shellcheck disable=SC2046 # two words: the flag and its value
	DISCARD=1 measure grpc-floor "$SINK_PID" complete "$SINK_ADDR" $(shape_args grpc-floor)
	stop_sink
}

# 1. and 2., alternating each round: stwbridge (lifecycle events in, assembled spans
# out) with its defaults (no compression downstream, as the OTLP spec's default), then
# with gzip as the Collector; the Collector on the same spans as plain OTLP traces.
for ((round = 1; round <= ROUNDS; round++)); do
	bridge_run stwbridge
	bridge_run stwbridge-v11
	bridge_run stwbridge-gzip --config "$work/gzip.yaml"
	collector_run
	connector_run
	bridge_run stwbridge-v11-spec
	collector_run collector-spec
	floor_run
done
round=vis

# 3. Open visibility: span start to its stw.span_open at the sink, at 10k spans/s.
start_sink visibility
bridge_addr=$("$LOAD" freeport)
"$work/stwbridge" --listen "$bridge_addr" --http-listen "$("$LOAD" freeport)" \
	--forward "http://$SINK_ADDR" --forward-events --log-level warn 2> "$work/visibility.$round.log" &
bridge_pid=$!
pids+=("$bridge_pid")
wait_listen "$bridge_addr"
"$LOAD" send --endpoint "$bridge_addr" --mode events --rate 10000 --duration "$VIS_DURATION" > "$work/visibility.$round.send"
sent=$(sed -n 's/^stwload: sent \([0-9]*\) spans.*/\1/p' "$work/visibility.$round.send")
wait_spans "$sent" 60
kill -TERM "$bridge_pid"
wait "$bridge_pid" || true
stop_sink
echo "loadbench: visibility: $(cat "$work/visibility.$round.send"); sink: $(cat "$SINK_STATS")" >&2
printf 'BenchmarkOpenVisibility/stwbridge-10k\t1\t%s p99-ms\t%s p50-ms\n' "$(stat "$SINK_STATS" p99_ms)" "$(stat "$SINK_STATS" p50_ms)"
