#!/usr/bin/env bash
# Runs every Go fuzz target of the module for the given time (default 5s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-5s}
found=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
		found=1
		echo "fuzz $dir $target ($fuzztime)"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "./$dir"
	done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' || true)
[ "$found" = 1 ] || echo "no fuzz targets"
