#!/usr/bin/env bash
# Accelerator figures for jaxpg in one command of at most 8 minutes (docs/gpu.md):
# installs the wheels of .gpu/wheels the machine lacks (scripts/gpu_wheels.py fills it
# on a connected machine) into temporary --target folders, checks jaxpg's version
# ranges, runs every part of scripts/gpu_bench.py under its own time limit and writes
# docs/bench/gpu-<device>-<date>.json and docs/gpu.md.
#
#   bash scripts/gpu_bench.sh            # on the accelerator machine, from anywhere
#   bash scripts/gpu_bench.sh --smoke    # tiny sizes: the logic, on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3 || command -v python)}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
# The script keeps its own budget (470 s); this is the last resort if it hangs itself.
exec timeout "${GPU_BENCH_TIMEOUT:-520}" "$PY" scripts/gpu_bench.py "$@"
