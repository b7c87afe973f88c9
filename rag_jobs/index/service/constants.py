"""The service's limits and defaults, the token's environment variables, and the index's files."""

import numpy as np

from rag_jobs.index.faiss_index import META_FILE, OWN_FILES

DEFAULT_MAX_BATCH = 256  # query vectors per request
DEFAULT_MAX_K = 1000  # results per query
DEFAULT_MAX_IDS = 10_000  # ids per /v1/passages or /v1/vectors request
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # 256 queries x 1024 dims as JSON is about 6 MB
DEFAULT_MAX_IN_FLIGHT = 64  # concurrent /v1 requests before answering 503
DEFAULT_PORT = 8080
TOKEN_ENV = "RAG_JOBS_INDEX_TOKEN"  # the bearer token itself
TOKEN_FILE_ENV = "RAG_JOBS_INDEX_TOKEN_FILE"  # or a file holding it (a mounted Secret)
RETRY_AFTER_OVERLOADED_S = 1
RETRY_AFTER_LOADING_S = 5
DEFAULT_MAX_QUESTION_CHARS = 2000  # /v1/answer: characters of one question
DEFAULT_MAX_ANSWERS_QUEUED = 8  # /v1/answer requests waiting for the generator before answering 503
MAX_ANSWER_K = 50  # passages in one answer's prompt
F32_MAX = float(np.finfo(np.float32).max)  # larger query values cannot be represented as float32

INDEX_FILES = (META_FILE, *OWN_FILES)  # and the passages: in the index folder or the corpus step
_ENDPOINTS = ("/v1/search", "/v1/answer", "/v1/passages", "/v1/vectors", "/v1/contains", "/v1/info", "/healthz",
              "/readyz", "/metrics", "/openapi.json")
