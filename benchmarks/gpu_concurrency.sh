#!/usr/bin/env bash
# Real searches on one GPU, same budget: 8 threads vs 8 processes (random search, 1-epoch jobs, best-known
# NB201 size C=16 N=5, 10,000 train / 5,000 valid Fashion-MNIST images). Usage: OUT=dir bash benchmarks/gpu_concurrency.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUT"
common="--train fashion-mnist --method random --budget 40 --epochs 1 --C 16 --N 5 --train-size 10000 --valid-size 5000 --test-size 1000 --device cuda --data-root build/devdata --quiet"
for pool in "--workers 8" "--workers 8 --processes --devices cuda:0"; do
  echo "== pmfnas search $common $pool"
  timeout 100 python3 -m harness.cli search $common $pool 2>&1 | grep -v "^\[" 
done | tee "$OUT/concurrency.log"
