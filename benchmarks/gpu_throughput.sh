#!/usr/bin/env bash
# Issue 14 on one lent GPU, in one call of at most 8 minutes: the CUDA tests of the trainer paths, the device
# check with the graph path, then the throughput of every path (pmfnas benchmark throughput).
# Usage (on the device machine, from the repository root): OUT=dir bash benchmarks/gpu_throughput.sh
# Installs nothing: it runs the device image's python3 and torch (a CUDA build), as gpu_checks.sh did.
# Every step has its own timeout (sum 465 s); each writes its files as it goes, so a step cut short keeps
# what it measured. Estimated on an H200: tests ~40 s, device check ~60 s, throughput ~270 s for the
# eager/graph/process/batched rows, the compiled rows taking what is left of its 290 s.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUT"
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started )) s] $*" | tee -a "$OUT/steps.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" > "$OUT/versions.txt" 2>&1
git rev-parse HEAD >> "$OUT/versions.txt" 2>/dev/null

stamp "1. CUDA tests of the paths (graph and inductor against eager)"
if python3 -c "import pytest" 2>/dev/null; then
  timeout -k 5 75 python3 -m pytest -q -p no:cacheprovider tests/test_training_paths.py -k cuda -rs \
    > "$OUT/pytest_paths.log" 2>&1
  stamp "   pytest exit $?"
else
  echo "pytest is not installed in the device image: skipped" > "$OUT/pytest_paths.log"
  stamp "   pytest not installed: skipped (the device check below covers the graph path)"
fi

stamp "2. device check: resume equivalence (eager, bf16, graph), graph vs eager, one eager trial"
timeout -k 5 100 python3 -m benchmarks.device_check --out "$OUT/device-check" --skip-concurrent --epochs 2 \
  --trainers graph > "$OUT/device_check.log" 2>&1
stamp "   device check exit $?"

stamp "3. throughput of every path on the best cell and the 32-cell sample"
timeout -k 10 290 python3 -m harness.cli benchmark throughput --device cuda --out "$OUT/throughput" \
  --timeout 90 --compiled-cells 1 > "$OUT/throughput.log" 2>&1
stamp "   throughput exit $?"
tail -n 30 "$OUT/throughput.log"
