"""Device and precision policy."""

from __future__ import annotations

import torch

from rag_jobs.errors import ConfigError


def resolve_device(device: str = "auto") -> str:
    """`auto` picks CUDA when present, else CPU; `cuda` without a GPU is a config error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but no CUDA device is visible")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"device={device!r} is not one of auto, cpu, cuda[:N]")
    return device


def has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_quantization(quantization: str, device: str) -> str:
    """`auto` = NF4 on CUDA when bitsandbytes is installed, none elsewhere (unquantized is faster on a CPU).
    `nf4` runs wherever bitsandbytes does: on CUDA, and on the CPU (bitsandbytes >= 0.48, float32 compute),
    the same code path either way."""
    if quantization not in ("auto", "nf4", "none"):
        raise ConfigError(f"quantization={quantization!r} is not one of auto, nf4, none")
    if quantization == "auto":
        return "nf4" if device.startswith("cuda") and has_bitsandbytes() else "none"
    if quantization == "nf4" and not has_bitsandbytes():
        raise ConfigError("quantization='nf4' needs bitsandbytes (pip install 'bitsandbytes>=0.48'; it runs NF4 on "
                          "CUDA and on the CPU)")
    return quantization


def compute_dtype(device: str) -> torch.dtype:
    """bfloat16 on GPUs that support it; float32 on CPU (bfloat16 matmuls are ~20x slower there)."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def device_kind(device: str) -> tuple[str, int]:
    """(kind, count) of accelerators for time accounting."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0), max(1, torch.cuda.device_count())
    return "cpu", 1
