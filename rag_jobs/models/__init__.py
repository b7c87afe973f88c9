"""Loading the embedder and the generator (LoRA / 4-bit), and the device policy."""

from rag_jobs.models.device import resolve_device
from rag_jobs.models.embedder import load_embedder, resolve_embedder_path
from rag_jobs.models.generator import load_generator, resolve_generator_path

__all__ = ["load_embedder", "load_generator", "resolve_device", "resolve_embedder_path", "resolve_generator_path"]
