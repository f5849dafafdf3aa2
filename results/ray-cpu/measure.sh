#!/usr/bin/env bash
# compare --ray vs local processes: the same work, run back to back on this machine; writes timings.csv.
# Run from the repository root with the ray extra installed: bash results/ray-cpu/measure.sh
set -euo pipefail
OUT=results/ray-cpu
ARGS=(--benchmark nbnlp-wt2 --methods asha,pmfnas,random --seeds 10 --budget-evals 10 --processes 2 --quiet)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "mode,repeat,wall_seconds" > "$work/timings.csv"
for repeat in 1 2; do
  for mode in local ray; do
    extra=(); [ "$mode" = ray ] && extra=(--ray local)
    start=$(date +%s.%N)
    pmfnas compare "${ARGS[@]}" "${extra[@]}" --out "$work/$mode-$repeat" >/dev/null
    end=$(date +%s.%N)
    echo "$mode,$repeat,$(echo "$end - $start" | bc)" >> "$work/timings.csv"
  done
  cmp "$work/local-$repeat/runs.csv" "$work/ray-$repeat/runs.csv"
done
cp "$work/timings.csv" "$OUT/timings.csv"
cat "$OUT/timings.csv"
