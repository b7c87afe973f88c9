"""FAISS index build / load / search behind the Retriever protocol."""

from rag_jobs.index.faiss_index import FaissRetriever, build_index, encode_texts, load_index
from rag_jobs.index.protocol import Retriever, SearchResult

__all__ = ["FaissRetriever", "Retriever", "SearchResult", "build_index", "encode_texts", "load_index"]
