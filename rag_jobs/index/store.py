"""The passage store behind an index: row number = FAISS id, texts in the corpus' memory-mapped Arrow files.

Nothing here holds one Python object per passage. Ids are a fixed-width byte column in row order (`ids.npy`,
UTF-8, memory-mapped) with its sort order (`id_order.npy`): id -> row is a binary search over the two,
row -> id an array read, and texts are read from the Arrow files only for the rows asked for. Every process
that maps the same files shares their pages through the page cache (the 8 torchrun ranks of a node).

`MemoryPassages` is the same interface over a list, for indexes built in memory (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag_jobs.corpus.shards import CorpusShards
from rag_jobs.data.records import Passage
from rag_jobs.errors import DataError

IDS_FILE = "ids.npy"
ID_ORDER_FILE = "id_order.npy"


class MemoryPassages:
    """Passages held in a list (small indexes built in process)."""

    def __init__(self, passages: Sequence[Passage]):
        self._passages = list(passages)
        self._row = {p.id: i for i, p in enumerate(self._passages)}

    def __len__(self) -> int:
        return len(self._passages)

    def ids_at(self, rows: np.ndarray) -> list[str]:
        return [self._passages[int(r)].id for r in np.asarray(rows).reshape(-1)]

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """Rows of these ids; KeyError naming the first unknown one."""
        return np.asarray([self._row[i] for i in ids], dtype=np.int64)

    def contains(self, ids: Sequence[str]) -> np.ndarray:
        return np.asarray([i in self._row for i in ids], dtype=bool)

    def at(self, rows: np.ndarray) -> list[Passage]:
        return [self._passages[int(r)] for r in np.asarray(rows).reshape(-1)]


class MappedPassages:
    """Passages of a committed corpus (Arrow files) looked up through the memory-mapped id column."""

    def __init__(self, corpus: CorpusShards, ids: np.ndarray, order: np.ndarray):
        self.corpus, self.ids, self.order = corpus, ids, order
        self.width = ids.dtype.itemsize

    def __len__(self) -> int:
        return len(self.ids)

    def ids_at(self, rows: np.ndarray) -> list[str]:
        return [b.decode("utf-8") for b in self.ids[np.asarray(rows, dtype=np.int64).reshape(-1)]]

    def _find(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, found): binary search of each id in the sorted order (rows are 0 where not found)."""
        encoded = [i.encode("utf-8") for i in ids]
        fits = np.asarray([len(b) <= self.width and not b.endswith(b"\0") for b in encoded], dtype=bool)
        wanted = np.asarray([b if ok else b"" for b, ok in zip(encoded, fits)], dtype=self.ids.dtype)
        pos = np.searchsorted(self.ids, wanted, sorter=self.order)
        pos = np.minimum(pos, len(self.ids) - 1)
        rows = np.asarray(self.order[pos], dtype=np.int64)
        found = fits & (self.ids[rows] == wanted)
        return np.where(found, rows, 0), found

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        rows, found = self._find(ids)
        if not found.all():
            raise KeyError(ids[int(np.flatnonzero(~found)[0])])
        return rows

    def contains(self, ids: Sequence[str]) -> np.ndarray:
        return self._find(ids)[1] if len(ids) else np.zeros(0, dtype=bool)

    def at(self, rows: np.ndarray) -> list[Passage]:
        return self.corpus.take(rows)


def _fixed_width(col, width: int) -> np.ndarray:
    """An Arrow string array as an (n,) numpy array of `S{width}` (UTF-8 bytes, zero-padded), vectorised."""
    import pyarrow as pa

    col = col.cast(pa.large_binary())
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int64)[col.offset : col.offset + len(col) + 1]
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    out = np.zeros((len(col), width), dtype=np.uint8)
    if lengths.sum():
        row = np.repeat(np.arange(len(col)), lengths)
        pos = np.arange(int(lengths.sum())) - np.repeat(offsets[:-1] - offsets[0], lengths)
        out[row, pos] = data[offsets[0] : offsets[-1]]
    return out.view(f"S{width}").reshape(-1)


def write_ids(corpus: CorpusShards, out_dir: Path) -> tuple[int, int]:
    """Write ids.npy (row order) and id_order.npy (their sort) from the corpus' id column, file by file;
    refuses a duplicate id (found as equal neighbours in sorted order). Returns (rows, width in bytes)."""
    import pyarrow.compute as pc

    n = len(corpus)
    width = 1
    for col in corpus.id_batches():
        if len(col):
            width = max(width, int(pc.max(pc.binary_length(col)).as_py() or 1))
            if pc.any(pc.ends_with(col, "\0")).as_py():
                raise DataError("a passage id ends with a NUL character, which the id column cannot hold")
    ids = np.lib.format.open_memmap(out_dir / IDS_FILE, mode="w+", dtype=f"S{width}", shape=(n,))
    at = 0
    for col in corpus.id_batches():
        for start in range(0, len(col), 1 << 20):
            part = col.slice(start, 1 << 20)
            ids[at : at + len(part)] = _fixed_width(part, width)
            at += len(part)
    order = np.argsort(ids, kind="stable").astype(np.int64)
    check_unique(ids, order)
    ids.flush()
    del ids
    np.save(out_dir / ID_ORDER_FILE, order)
    return n, width


def check_unique(ids: np.ndarray, order: np.ndarray, chunk: int = 1 << 22) -> None:
    """DataError naming the first id that occurs twice (neighbours in sorted order), chunk by chunk."""
    for start in range(0, len(order) - 1, chunk):
        rows = order[start : start + chunk + 1]
        sorted_ids = ids[rows]
        same = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if same.size:
            r = rows[same[0]], rows[same[0] + 1]
            raise DataError(f"corpus has duplicate passage ids: {sorted_ids[same[0]].decode('utf-8')!r} "
                            f"at rows {min(r)} and {max(r)}")


def ids_digest(batches: Iterable) -> str:
    """sha256 of a sequence of ids (Arrow string arrays), to check an index shard holds the rows it should."""
    import hashlib

    h = hashlib.sha256()
    for col in batches:
        for start in range(0, len(col), 1 << 16):
            h.update("\n".join(col.slice(start, 1 << 16).to_pylist()).encode("utf-8") + b"\n")
    return h.hexdigest()
