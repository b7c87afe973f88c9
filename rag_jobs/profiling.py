"""Measure the throughputs `rag-jobs plan` needs, on this machine, with the chosen models (about a minute)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from rag_jobs.errors import ConfigError
from rag_jobs.planning import Profile

WORDS = ("river", "mountain", "castle", "violin", "comet", "harbour", "glacier", "orchard", "lantern", "meadow")


def _timed(fn, repeat: int = 2) -> float:
    fn()  # warm-up (allocations, kernels)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def measure_profile(embedder: str, generator: str, *, device: str = "cpu", seq_len: int = 256,
                    batch: int = 4) -> Profile:
    from rag_jobs.models import load_embedder, load_generator
    from rag_jobs.models.device import device_kind, resolve_device
    from rag_jobs.models.embedder import embed_with_grad
    from rag_jobs.models.lora import add_lora

    dev = resolve_device(device)
    gen, tok = load_generator(generator, device=dev, quantization="auto")
    gen.eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, min(len(tok), 30000), (batch, seq_len), generator=g).to(dev)
    att = torch.ones_like(ids)
    with torch.no_grad():
        fwd_s = _timed(lambda: gen(input_ids=ids, attention_mask=att, logits_to_keep=1))

    def decode():
        with torch.no_grad():
            gen.generate(input_ids=ids, attention_mask=att, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                         pad_token_id=tok.eos_token_id)

    decode_s = max(_timed(decode, repeat=1) - fwd_s, 1e-6)  # the prefill is the forward measured above
    lora = add_lora(gen, r=16)
    lora.train()
    half = ids[: max(1, batch // 2)]

    def train_step():
        out = lora(input_ids=half, attention_mask=torch.ones_like(half), labels=half)
        out.loss.backward()
        lora.zero_grad(set_to_none=True)

    train_s = _timed(train_step)
    emb = load_embedder(embedder, device=dev)
    passages = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(110)) for i in range(64)]
    with torch.inference_mode():
        enc_s = _timed(lambda: emb.encode(passages, batch_size=64, convert_to_numpy=True), repeat=1)
    emb.train()
    questions = [f"which {WORDS[i % 10]} lies near the {WORDS[(i + 3) % 10]} of the {WORDS[(i + 5) % 10]}?"
                 for i in range(16)]

    def emb_step():
        embed_with_grad(emb, questions).pow(2).sum().backward()
        emb.zero_grad(set_to_none=True)

    emb_train_s = _timed(emb_step)
    kind, _ = device_kind(dev)
    return Profile(device=kind, gen_forward_tokens_per_s=batch * seq_len / fwd_s,
                   gen_train_tokens_per_s=half.numel() / train_s, gen_decode_tokens_per_s=batch * 16 / decode_s,
                   embed_passages_per_s=len(passages) / enc_s, embed_train_questions_per_s=len(questions) / emb_train_s,
                   generator=generator, embedder=embedder)


def save_profile(profile: Profile, path: Path) -> None:
    from dataclasses import asdict

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(profile), indent=2))


def load_profile(path: Path) -> Profile:
    try:
        data = json.loads(Path(path).read_text())
        if "profile" in data:  # a benchmark result that embeds one
            data = data["profile"]
        return Profile(**data)
    except FileNotFoundError:
        raise ConfigError(f"profile file {path} does not exist (make one with `rag-jobs plan --measure`)") from None
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"profile file {path} is not a valid profile: {str(exc).splitlines()[0]}") from None
