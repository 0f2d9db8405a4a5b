#!/usr/bin/env bash
# Runs the benchmarks behind scripts/benchrows.tsv and the load test, then rewrites
# BENCHMARKS.md with one table of candidate / baseline ratios.
#   scripts/bench.sh [benchtime]     (default 1s; make bench passes $(BENCHTIME))
# BENCHROUNDS (default 3) is how many times each package's benchmarks run, one round
# after the other so that a candidate and its baseline run close in time; the report
# takes the median. Raw outputs go to .tools/bench/: one file per package dir (slashes
# as "__"), and load.txt from scripts/loadbench.sh when that script exists (run once).
# GOMAXPROCS is left as the machine has it. A package whose benchmarks fail is
# reported and makes the script exit 1, after BENCHMARKS.md is written with its rows
# as "not run".
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-1s}
rounds=${BENCHROUNDS:-3}
out=.tools/bench
rows=scripts/benchrows.tsv
rm -rf "$out"
mkdir -p "$out"
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)

# Package dirs named in the candidate and baseline columns.
mapfile -t dirs < <(grep -v '^#' "$rows" | awk -F'\t' 'NF >= 5 { print $3; print $4 }' |
	grep -v '^-$' | sed 's/:.*//' | sort -u)

failed=()
for dir in "${dirs[@]}"; do
	[ "$dir" = load ] && continue
	if [ ! -d "$dir" ]; then
		echo "bench: $rows names package dir $dir, which does not exist; its rows will read \"not run\"" >&2
		continue
	fi
	file=$out/${dir//\//__}.txt
	for ((round = 1; round <= rounds; round++)); do
		echo "bench: go test -bench . -benchtime $benchtime ./$dir (round $round of $rounds)"
		# collector/ is a module of its own: its packages are benchmarked from there.
		mod=. pkg=./$dir
		if [[ $dir == collector/* ]]; then mod=collector pkg=./${dir#collector/}; fi
		if ! (cd "$mod" && go test -run '^$' -bench . -benchmem -benchtime "$benchtime" "$pkg") 2>&1 | tee -a "$file"; then
			failed+=("$dir")
			break
		fi
	done
done

if [ -f scripts/loadbench.sh ]; then
	echo "bench: scripts/loadbench.sh"
	if ! bash scripts/loadbench.sh 2>&1 | tee "$out/load.txt"; then
		failed+=(load)
	fi
fi

go run ./internal/tools/benchreport -rows "$rows" -dir "$out" -out BENCHMARKS.md -benchtime "$benchtime" \
	-load-start "$load_start"
echo "bench: wrote BENCHMARKS.md"
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: benchmarks failed in: ${failed[*]} (raw output in $out/)" >&2
	exit 1
fi
