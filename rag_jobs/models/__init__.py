"""Loading the embedder and the generator (LoRA / 4-bit), and the device policy."""

from rag_jobs.models.device import resolve_device
from rag_jobs.models.embedder import load_embedder, resolve_embedder_path
from rag_jobs.models.generator import load_generator, resolve_generator_path

__all__ = ["load_embedder", "load_generator", "resolve_device", "resolve_embedder_path", "resolve_generator_path"]


def check_model_name(name: str, role: str) -> None:
    """ModelError for a name that is neither an alias, an existing path nor a plausible hub id."""
    from pathlib import Path

    from rag_jobs.errors import ModelError
    from rag_jobs.models.embedder import EMBEDDER_ALIASES
    from rag_jobs.models.generator import GGUF_ALIASES

    aliases = EMBEDDER_ALIASES if role == "embedder" else GGUF_ALIASES
    if name in aliases or Path(name).expanduser().exists():
        return
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelError(f"unknown {role} {name!r}: not a local path, not an alias ({', '.join(aliases)}), "
                         "not a Hugging Face name (org/model)")
