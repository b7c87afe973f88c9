"""rag-jobs: fine-tune the retriever and the generator of a RAG pipeline, locally or on Kubernetes."""

__version__ = "0.1.0"
