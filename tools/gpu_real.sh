#!/usr/bin/env bash
# The real-pedestrian grid on a lent GPU machine (one H200, 16 cores) as ONE command of at most 9 minutes.
#
# Prepare here (CPU):   .venv/bin/python -m sisnet.experiments pack          # data/packed, about 38 MiB
# Run with the device tool:
#   run(command="tools/gpu_real.sh", timeout_s=560,
#       carry=["data/packed", "data/weights/mobilenetv2_100.imagenet-offline.safetensors",
#              "data/weights/mobilenetv2_100.imagenet-offline.json"])
# It brings back at most 8 files under $OUT: the real tables (one archive), the GPU benchmark table and logs.
# The device image has torch, timm, pandas, scipy, h5py and tqdm; sisnet runs from the working tree.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/gpu}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD" HF_HUB_OFFLINE=1 SISNET_WEIGHTS_DIR="$PWD/data/weights"
PY=python3
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/device.txt" 2>&1
# 1. the grid at 8 seeds with longer candidate schedules (the CPU run chose the longest of 5 and 10), 8 runs at a time on the one GPU (bf16 autocast: amp="auto" on CUDA), tables only
timeout 420 $PY -m sisnet.experiments real --data-root data/packed --seeds 0,1,2,3,4,5,6,7 --epochs 10,20,40 --out "$OUT/real" \
    --workers 8 --threads 2 --no-notebook > "$OUT/real.log" 2>&1
echo "real: exit $?" >> "$OUT/device.txt"
tar czf "$OUT/real_tables.tgz" -C "$OUT/real" . 2>> "$OUT/device.txt" && rm -rf "$OUT/real"
# 2. the paper profile's step: bf16 / channels_last, end-to-end vs model-only (random init: ResNet-50 ImageNet
#    weights cannot be had offline, which does not change a timing)
timeout 90 $PY -m sisnet.benchmark --section gpu --out "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "benchmark: exit $?" >> "$OUT/device.txt"
mv "$OUT/bench/benchmarks.csv" "$OUT/benchmarks.csv" 2>/dev/null; rm -rf "$OUT/bench"
# 3. the CUDA-only tests
timeout 60 $PY -m pytest -q -p no:cacheprovider tests/test_rank_paths.py > "$OUT/cuda_tests.log" 2>&1
echo "cuda tests: exit $?" >> "$OUT/device.txt"
