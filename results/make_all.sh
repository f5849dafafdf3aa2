#!/usr/bin/env bash
# Regenerates every comparison and predictor evaluation under results/ and results/SUMMARY.md.
# Run from the repository root with pmfnas installed: bash results/make_all.sh [PART]
#   project     (the default) the project's methods, the predictor evaluations, then the summary
#   peers       the peer libraries' fast methods; needs pip install ".[peers]"
#   peers-neps  NePS's methods (also in the `peers` extra), into folders of their own: results/B/peers-neps*
#   peers-smac  SMAC3's Hyperband (30-60 s per run), the issue's 30 seeds, into results/B/peers-smac*
#   peers-gp    syne-tune's Gaussian-process schedulers (Hyper-Tune, MOBSTER, DyHPO: 0.5-4 min per run at 10
#               full evaluations; at 30 Hyper-Tune 2-7, MOBSTER ~2, DyHPO 1.5-15), 30 seeds, one folder per
#               method: results/B/peers-M*
#   summary     results/SUMMARY.md from every compare folder present (the project's and the peers')
set -euo pipefail
shopt -s nullglob
part="${1:-project}"
# SMAC3's local search orders its start points through a set of Configurations, so a smac-hb run depends on
# Python's hash seed as well as on the run's seed (results/peers-speed/README.md): fix it for every run.
export PYTHONHASHSEED=0
# Every shipped benchmark with learning curves; BENCHMARKS="nbnlp-wt2" bash results/make_all.sh ... runs one.
BENCHMARKS="${BENCHMARKS:-nb201-c10-sample nbnlp-wt2 nb201-fmnist}"

# The peers at W = 1, both budgets; 50 seeds are the project's, so every run has its pair.
# --processes 1: on a shared 2-core machine.
peers() {  # methods, folder prefix, seeds
  for B in $BENCHMARKS; do
    pmfnas compare --benchmark "$B" --methods "$1" --seeds "$3" --budget-evals 30 --processes 1 \
      --out "results/$B/$2" --quiet
    pmfnas compare --benchmark "$B" --methods "$1" --seeds "$3" --budget-evals 10 --processes 1 \
      --out "results/$B/$2-10-full-evals" --quiet
  done
}

summary() {
  pmfnas report results/*/compare*/ results/*/peers*/ --out results/SUMMARY.md  # folders, not scripts
}

case "$part" in
  project)
    METHODS=random,sh,hyperband,asha,rea,pmfnas,pmfnas-no-predictor,pmfnas-no-allocator,pmfnas-no-stage2
    for B in $BENCHMARKS; do
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
    summary ;;
  peers) peers dehb,optuna-tpe-hb,optuna-tpe-sh,synetune-asha,synetune-bohb peers 50 ;;
  peers-neps) peers neps-hb,neps-asha peers-neps 50 ;;
  peers-smac) peers smac-hb peers-smac 30 ;;
  peers-gp)
    for method in hypertune mobster dyhpo; do
      peers "synetune-$method" "peers-$method" 30
    done ;;
  summary) summary ;;
  *) echo "results/make_all.sh: unknown part '$part' (project, peers, peers-neps, peers-smac, peers-gp or summary)" >&2
     exit 2 ;;
esac
