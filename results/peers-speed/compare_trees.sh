#!/bin/bash
# One (method, seed) run in two source trees, one after the other, then whether their job traces match.
#   bash results/peers-speed/compare_trees.sh BEFORE_TREE AFTER_TREE METHOD BENCHMARK BUDGET_EVALS OUT_DIR SEED...
# e.g. BEFORE_TREE from `git archive 0cdf7c0 | tar -x -C /tmp/before`. PYTHONHASHSEED is fixed (smac-hb
# depends on it, see README.md); PYTHON defaults to /work/venv-peers/bin/python.
set -euo pipefail
before=$1; after=$2; method=$3; benchmark=$4; evals=$5; out=$6; shift 6
python=${PYTHON:-/work/venv-peers/bin/python}
script="$(cd "$(dirname "$0")" && pwd)/profile_run.py"
export OMP_NUM_THREADS=1 PYTHONHASHSEED=0
mkdir -p "$out"
for seed in "$@"; do
  for side in before after; do
    tree=$before; [ "$side" = after ] && tree=$after
    (cd "$tree" && PYTHONPATH="$tree" nice -n 10 "$python" "$script" --benchmark "$benchmark" --method "$method" \
      --seed "$seed" --budget-evals "$evals" --trace "$out/${method}_${benchmark}_${evals}_s${seed}_$side.csv" \
      2>&1 | grep wall | sed "s/^/$side: /")
  done
  if cmp -s "$out/${method}_${benchmark}_${evals}_s${seed}_before.csv" "$out/${method}_${benchmark}_${evals}_s${seed}_after.csv"
  then echo "seed $seed: traces identical"; else echo "seed $seed: traces DIFFER"; fi
done
