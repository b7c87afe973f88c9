"""Where the index comes from: a local index folder or a committed step of a run (`IndexSource`)."""

import hashlib
import json
import os
from pathlib import Path

from rag_jobs.errors import ConfigError, DataError, IntegrityError
from rag_jobs.index.faiss_index import META_FILE, FaissRetriever, load_index
from rag_jobs.index.service.constants import INDEX_FILES

# ---------------------------------------------------------------------------------------------------
# Where the index comes from
# ---------------------------------------------------------------------------------------------------


def _cache_root() -> Path:
    """RAG_JOBS_CACHE, else ~/.cache/rag-jobs (the same folder the jobs use; no model imports here)."""
    root = os.environ.get("RAG_JOBS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rag-jobs")
    return Path(root)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[-80:]


def content_id(meta: dict) -> str:
    """A short id of the index's bytes: the same files give the same id wherever they are loaded from."""
    digests = json.dumps(meta.get("sha256", {}), sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(digests).hexdigest()[:16]


class IndexSource:
    """A local index folder, or a committed step of a run: `<store-uri>/runs/<run-id>/<step>`.

    `read_meta()` is cheap (index_meta.json only, verified against the step manifest for a run step);
    `load()` fetches the rest (sha256-verified by the store's manifest, then again by load_index
    against index_meta.json before FAISS reads a byte) and returns the retriever.
    """

    def __init__(self, spec: "str | os.PathLike[str]", *, cache_dir: "Path | None" = None):
        self.spec = str(spec)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _cache_root()
        self._store = None
        self._manifest = None
        self.local_dir: Path | None = None
        self.step_ref = None
        self.store_uri: str | None = None
        text = self.spec
        if not text.strip():
            raise ConfigError("index must be an index folder or <store-uri>/runs/<run-id>/<step>, got ''")
        path_text = text[len("file://"):] if text.startswith("file://") else text
        if "://" not in path_text and (Path(path_text) / META_FILE).is_file():
            self.local_dir = Path(path_text)
            return
        head, sep, step = text.rstrip("/").rpartition("/")
        if not sep or "/runs/" not in f"/{head}":
            if "://" in path_text:
                raise ConfigError(f"index {text!r} must look like <store-uri>/runs/<run-id>/<step>")
            raise DataError(f"{path_text} is not an index folder (no {META_FILE}) nor <store-uri>/runs/<id>/<step>")
        from rag_jobs.artifacts import StepRef, parse_run_uri

        self.store_uri, run = parse_run_uri(head)
        self.step_ref = StepRef(run.run_id, step)

    @property
    def description(self) -> str:
        if self.local_dir is not None:
            return str(self.local_dir)
        return f"{self.store_uri.rstrip('/')}/runs/{self.step_ref.run_id}/{self.step_ref.step}"

    def _committed(self):
        """(store, manifest) of the step; a selection step stands for the grid child it selected."""
        from rag_jobs.artifacts import ArtifactNotFound, open_store, read_selected

        if self._manifest is None:
            store = open_store(self.store_uri)
            manifest = read_selected(store, self.step_ref)
            if manifest is None:
                raise ArtifactNotFound(f"{self.step_ref.describe()} is not committed in {store.uri}")
            missing = [name for name in INDEX_FILES if name not in manifest.files]
            if missing:
                raise DataError(f"{self.description} holds no index (no {missing[0]})")
            self._store, self._manifest = store, manifest
        return self._store, self._manifest

    def _fetch(self, files: "tuple[str, ...]") -> Path:
        from rag_jobs.artifacts import fetch_manifest

        store, manifest = self._committed()
        dest = self.cache_dir / "artifacts" / _safe(store.uri) / manifest.run_id / manifest.step / manifest.attempt
        return fetch_manifest(store, manifest, dest, files=files)

    @property
    def index_dir(self) -> Path:
        return self.local_dir if self.local_dir is not None else self._fetch((META_FILE,))

    def read_meta(self) -> dict:
        path = self.index_dir / META_FILE
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{path} is corrupt: {exc}") from exc
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("dim"), int) or meta["dim"] <= 0:
            raise IntegrityError(f"{path} has no valid 'dim'")
        return meta

    def index_id(self, meta: dict) -> str:
        if self.local_dir is not None:
            return content_id(meta)
        _, manifest = self._committed()
        return f"{manifest.run_id}/{manifest.step}@{manifest.attempt}"

    def load(self) -> FaissRetriever:
        """The index memory-mapped, with the corpus it references: for a run step, the committed corpus step
        that was its input (fetched once into the cache, like the index's own files)."""
        if self.local_dir is not None:
            return load_index(self.local_dir, self._local_corpus(), verify=True)
        meta = self.read_meta()
        folder = self._fetch(tuple(dict.fromkeys((*INDEX_FILES, *meta.get("sha256", {})))))
        corpus_dir = None
        if meta.get("passages_in") == "corpus":
            corpus_dir = self._fetch_corpus()
        return load_index(folder, corpus_dir, verify=True)

    def _local_corpus(self) -> "Path | None":
        """A local index folder that references a corpus: RAG_JOBS_INDEX_CORPUS names that folder."""
        corpus = os.environ.get("RAG_JOBS_INDEX_CORPUS")
        return Path(corpus) if corpus else None

    def _fetch_corpus(self) -> Path:
        from rag_jobs.artifacts import StepRef, fetch_manifest, read_manifest

        store, manifest = self._committed()
        entry = (manifest.inputs or {}).get("corpus")
        if not entry:
            raise DataError(f"{self.description}: the index keeps its passages in a corpus step that its "
                            f"manifest does not name")
        ref = StepRef(self.step_ref.run_id, entry["step"])
        corpus = read_manifest(store, ref)
        if corpus is None:
            raise DataError(f"{self.description}: its corpus step {ref.describe()} is not committed")
        dest = self.cache_dir / "artifacts" / _safe(store.uri) / corpus.run_id / corpus.step / corpus.attempt
        return fetch_manifest(store, corpus, dest)
