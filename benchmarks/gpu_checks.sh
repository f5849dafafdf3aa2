#!/usr/bin/env bash
# The GPU checks of one lent-device call: batched-trainer throughput, then the device check.
# Usage (on the device machine, from the repository root): OUT=dir bash benchmarks/gpu_checks.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" > "$OUT/versions.txt" 2>&1
timeout 110 python3 -m benchmarks.training.build throughput --k 1,8,32 --device cuda --steps 20 \
  --json "$OUT/batched_throughput.json" 2>&1 | tee "$OUT/batched_throughput.log"
timeout 170 python3 -m benchmarks.device_check --out "$OUT/device-check" --max-concurrent 8 --epochs 1 --timeout 100 \
  2>&1 | tee "$OUT/device_check.log"
