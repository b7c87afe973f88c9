"""Corpus specs: where the passages to index come from, read row by row with the place of each row.

    medrag:DIR                 MedRAG's layout: JSON Lines files (`chunk/*.jsonl` or `*.jsonl`, read in sorted
                               order) of {id, title, content[, contents]} rows
    hf:NAME[:CONFIG][@SPLIT]   a hub dataset with those fields, streamed (e.g. hf:MedRAG/wikipedia; network)
    jsonl:FILE|DIR             {id, title, text} rows (a file, or the *.jsonl files of a folder)
    parquet:PATH               the same fields in Parquet (a file, or the *.parquet files of a folder)
    docs:PATH                  whole documents {id, title, text} (JSON Lines), chunked as MedRAG did

Under `--corpus` these are passages only (`jsonl:` here is not the dataset format of questions + corpus).
Every bad row is a DataError naming its file and line (or row).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag_jobs.artifacts.digests import file_sha256
from rag_jobs.corpus.chunking import chunk_document, make_splitter
from rag_jobs.data._common import (
    Where,
    as_id,
    as_str,
    existing_file,
    first_present,
    hub_parts,
    iter_json_records,
    one_line,
    require,
)
from rag_jobs.data.records import Passage
from rag_jobs.errors import DataError, TransientError

CORPUS_FORMS = ("medrag:DIR", "hf:NAME[:CONFIG][@SPLIT]", "jsonl:FILE|DIR", "parquet:PATH", "docs:PATH")
_SUFFIX = {"medrag": ".jsonl", "jsonl": ".jsonl", "docs": ".jsonl", "parquet": ".parquet"}
_HINT = {"medrag": " (expected a MedRAG row {id, title, content})", "jsonl": " (expected {id, title, text})",
         "docs": " (expected a document {id, title, text})", "parquet": " (expected {id, title, text})",
         "hf": " (expected a row {id, title, content} or {id, title, text})"}


@dataclass(frozen=True)
class CorpusSpec:
    spec: str
    kind: str
    arg: str

    def files(self) -> list[Path]:
        """The files a local spec reads, in the order it reads them."""
        if self.kind == "hf":
            return []
        root = Path(self.arg).expanduser()
        if not root.exists():
            raise DataError(one_line(f"--corpus {self.spec}: {root}: no such file or directory"))
        if root.is_file():
            return [root]
        suffix = _SUFFIX[self.kind]
        if self.kind == "medrag" and (root / "chunk").is_dir():
            root = root / "chunk"
        files = sorted(p for p in root.rglob(f"*{suffix}") if p.is_file())
        if not files:
            raise DataError(one_line(f"--corpus {self.spec}: {root} holds no {suffix} files"))
        return files


def parse_corpus_spec(spec: str) -> CorpusSpec:
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty corpus spec: expected one of {', '.join(CORPUS_FORMS)}")
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    if kind not in _HINT:
        raise DataError(one_line(f"unknown corpus spec {spec!r}: expected one of {', '.join(CORPUS_FORMS)}"))
    if not arg:
        raise DataError(one_line(f"corpus spec {spec!r}: missing the path or name after {kind}:"))
    if kind == "hf":
        hub_parts(spec, arg, "corpus spec")
    return CorpusSpec(spec, kind, arg)


def check_corpus_spec(spec: str) -> None:
    """Fail fast (nothing is read): bad syntax, a missing file or folder, a missing package."""
    cs = parse_corpus_spec(spec)
    needs = {"hf": "datasets", "parquet": "pyarrow", "docs": "langchain_text_splitters"}.get(cs.kind)
    if needs and importlib.util.find_spec(needs) is None:
        raise DataError(one_line(f"--corpus {spec}: needs the {needs!r} package; run `pip install "
                                 f"{needs.replace('_', '-')}`"))
    cs.files()


def source_digest(spec: str) -> str | None:
    """The content hash of a local spec's files (their names under the spec's path, and their bytes), so that
    the corpus step is shared by content; None for a hub dataset (keyed by its name). Digests are cached by
    (path, size, mtime), so a 20 GB corpus is read once, not at every run."""
    cs = parse_corpus_spec(spec)
    if cs.kind == "hf":
        return None
    root = Path(cs.arg).expanduser()
    h = hashlib.sha256(cs.kind.encode())
    for f in cs.files():
        h.update(str(f.relative_to(root) if f != root else f.name).encode() + b"\0")
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def iter_source(spec: str, *, chunk_size: int, chunk_overlap: int) -> Iterator[tuple[Where, Passage]]:
    """Every passage of a corpus spec with its place (empty texts included: the caller drops and counts them).
    `docs:` documents are chunked with (chunk_size, chunk_overlap)."""
    cs = parse_corpus_spec(spec)
    if cs.kind == "hf":
        yield from _hub_rows(cs)
    elif cs.kind == "parquet":
        for f in cs.files():
            yield from _parquet_rows(f, cs)
    elif cs.kind == "docs":
        splitter = make_splitter(chunk_size, chunk_overlap)
        for f in cs.files():
            for where, obj in iter_json_records(f):
                doc = _passage(obj, where, "docs")
                for p in chunk_document(splitter, doc.id, doc.title, doc.text):
                    yield where, p
    else:
        for f in cs.files():
            for where, obj in iter_json_records(f):
                yield where, _passage(obj, where, cs.kind)


def _passage(obj, where: Where, kind: str) -> Passage:
    hint = _HINT[kind]
    pid = as_id(require(obj, "id", where, hint), where, "id")
    raw_title = obj.get("title")
    title = "" if raw_title is None else as_str(raw_title, where, "title", allow_empty=True)
    keys = ("content", "text") if kind in ("medrag", "hf") else ("text", "content")
    name = next((k for k in keys if k in obj), keys[0])
    text = as_str(first_present(obj, keys, where, hint), where, name, allow_empty=True)
    return Passage(pid, title, text)


def _parquet_rows(path: Path, cs: CorpusSpec) -> Iterator[tuple[Where, Passage]]:
    import pyarrow.parquet as pq

    existing_file(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid for a file that is not Parquet
        raise DataError(one_line(f"{path}: not a Parquet file: {e}")) from None
    names = set(pf.schema_arrow.names)
    text_col = "text" if "text" in names else "content"
    missing = [c for c in ("id", text_col) if c not in names]
    if missing:
        raise DataError(one_line(f"{path}: missing column {missing[0]!r}{_HINT['parquet']}"))
    cols = ["id", text_col] + (["title"] if "title" in names else [])
    row = 0
    for batch in pf.iter_batches(columns=cols, batch_size=8192):
        for obj in batch.to_pylist():
            row += 1
            where = Where(str(path), row, unit="row")
            yield where, _passage(obj, where, "parquet")


def _hub_rows(cs: CorpusSpec) -> Iterator[tuple[Where, Passage]]:
    name, config, split = hub_parts(cs.spec, cs.arg, "corpus spec")
    try:
        import datasets
    except ImportError:
        raise DataError(f"--corpus {cs.spec}: the 'datasets' package is not installed; run `pip install "
                        "datasets`, or download the files and use medrag:DIR") from None
    try:
        rows = datasets.load_dataset(name, config, split=split or "train", streaming=True)
    except FileNotFoundError as e:
        raise DataError(one_line(f"--corpus {cs.spec}: not found on the hub: {e}")) from e
    except (ConnectionError, TimeoutError, OSError) as e:
        raise TransientError(one_line(f"--corpus {cs.spec}: download failed: {e}")) from e
    for i, obj in enumerate(rows):
        where = Where(cs.spec, i, unit="row")
        yield where, _passage(obj, where, "hf")
