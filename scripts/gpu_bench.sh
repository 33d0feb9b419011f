#!/usr/bin/env bash
# Accelerator figures for jaxpg in one go (about 6 minutes on one GPU, installs included):
# the default run must still learn (>= 475), then PPO steps/s at 64..65,536 envs, many
# seeds vmapped, per-trajectory gradients/s at K = 1e5 and 1e6, compiled memory.
# Writes docs/bench/gpu-<backend>-<date>.json (see scripts/gpu_bench.py).
#
#   scripts/gpu_bench.sh            # on the accelerator machine, from the repository root
#   scripts/gpu_bench.sh --smoke    # tiny sizes: checks the script on a CPU
#
# The accelerator machine reaches no package index. If its Python lacks a GPU jax,
# bring wheels in ./wheels (made on a connected machine of the same platform with
#   pip download -d wheels "jax[cuda12]==0.10.2" flax optax "gymnax==1.0.1"
# ) and this script installs them with --no-index. jaxpg itself runs from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
smoke=0
for a in "$@"; do [ "$a" = "--smoke" ] && smoke=1; done

has_accelerator() {
  "$PY" - <<'PY' 2>/dev/null
import sys
try:
    import jax, flax, optax, gymnax  # noqa: F401
except Exception:
    sys.exit(2)
sys.exit(0 if jax.default_backend() != "cpu" else 1)
PY
}

start=$(date +%s)
status=0; has_accelerator || status=$?
if [ "$status" -ne 0 ] && [ "$smoke" -eq 0 ]; then
  if [ -d wheels ]; then
    echo "installing from ./wheels (no index)"
    "$PY" -m pip install -q --no-index --find-links wheels "jax[cuda12]" flax optax gymnax
    status=0; has_accelerator || status=$?
  fi
  if [ "$status" -eq 2 ]; then
    echo "gpu_bench: jax, flax, optax or gymnax is missing and ./wheels has none" >&2
    exit 2
  fi
  [ "$status" -eq 1 ] && echo "gpu_bench: warning: no accelerator; figures will be CPU ones" >&2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
echo "setup took $(( $(date +%s) - start )) s"
# Leave a minute of the 6 for the set-up above; the JSON is written after each section.
timeout "${GPU_BENCH_TIMEOUT:-330}" "$PY" scripts/gpu_bench.py "$@"
