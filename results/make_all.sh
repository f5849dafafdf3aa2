#!/usr/bin/env bash
# Regenerates every comparison and predictor evaluation under results/ and results/SUMMARY.md.
# Run from the repository root with pmfnas installed: bash results/make_all.sh
set -euo pipefail
METHODS=random,sh,hyperband,asha,rea,pmfnas,pmfnas-no-predictor,pmfnas-no-allocator,pmfnas-no-stage2
for B in nb201-c10-sample nbnlp-wt2; do
  for W in 1 4; do
    suffix=$([ "$W" = 1 ] && echo "" || echo "-w$W")
    pmfnas compare --benchmark "$B" --methods "$METHODS" --seeds 50 --workers "$W" --budget-evals 30 \
      --out "results/$B/compare$suffix" --quiet
    pmfnas compare --benchmark "$B" --methods "$METHODS" --seeds 50 --workers "$W" --budget-evals 10 \
      --out "results/$B/compare-10-full-evals$suffix" --quiet
  done
  pmfnas predictor-eval --benchmark "$B" --fraction 0.05,0.1,0.25,0.5 --train-archs 50 --seeds 10 \
    --out "results/$B/predictor-eval" --quiet
done
pmfnas report results/nb201-c10-sample/compare* results/nbnlp-wt2/compare* --out results/SUMMARY.md
