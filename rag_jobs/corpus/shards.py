"""The committed corpus: Arrow IPC files of a fixed row count (`passages-00000.arrow`, ...) and `corpus.json`.

Arrow IPC (not Parquet) because it memory-maps with random row access: an index shard reads only the rows of
its slice, and the paper-scale passage store can reference these files instead of copying their text.
Columns: id, title, text (strings). `corpus.json` lists the files with their row counts, so a reader knows
which files hold rows [lo, hi) without opening the others.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag_jobs.data.records import Passage
from rag_jobs.errors import IntegrityError

CORPUS_META = "corpus.json"
CORPUS_FORMAT = 1
_BATCH_ROWS = 8192


def _schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])


class ShardWriter:
    """Writes passages, in order, into files of `shard_rows` rows each (record batches of up to 8,192 rows)."""

    def __init__(self, out_dir: Path, shard_rows: int):
        self.out_dir, self.shard_rows = Path(out_dir), shard_rows
        self.files: list[dict] = []
        self._writer = None
        self._rows_in_file = 0
        self._batch: dict[str, list[str]] = {"id": [], "title": [], "text": []}

    def add(self, p: Passage) -> None:
        b = self._batch
        b["id"].append(p.id)
        b["title"].append(p.title)
        b["text"].append(p.text)
        if len(b["id"]) >= _BATCH_ROWS or self._rows_in_file + len(b["id"]) >= self.shard_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        if not self._batch["id"]:
            return
        if self._writer is None:
            name = f"passages-{len(self.files):05d}.arrow"
            self._writer = ipc.new_file(str(self.out_dir / name), _schema())
            self.files.append({"file": name, "rows": 0})
        rows = len(self._batch["id"])
        self._writer.write_batch(pa.record_batch(self._batch, schema=_schema()))
        self._batch = {"id": [], "title": [], "text": []}
        self._rows_in_file += rows
        self.files[-1]["rows"] += rows
        if self._rows_in_file >= self.shard_rows:
            self._writer.close()
            self._writer, self._rows_in_file = None, 0

    def close(self, **meta) -> dict:
        """Write the last batch and `corpus.json` (with `meta`); the description written."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        desc = {"format": CORPUS_FORMAT, "rows": sum(f["rows"] for f in self.files), "shard_rows": self.shard_rows,
                "files": self.files, **meta}
        (self.out_dir / CORPUS_META).write_text(json.dumps(desc, indent=2), encoding="utf-8")
        return desc


class CorpusShards:
    """Read access to a committed corpus folder; files are memory-mapped, rows read only where asked."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        try:
            self.meta = json.loads((self.folder / CORPUS_META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise IntegrityError(f"{self.folder}: not a committed corpus ({CORPUS_META}: {e})") from e
        self.files = self.meta["files"]
        self.starts = []
        n = 0
        for f in self.files:
            self.starts.append(n)
            n += f["rows"]
        self.rows = n
        self._tables: dict[int, object] = {}
        self._batch_starts: dict[int, tuple] = {}

    def __len__(self) -> int:
        return self.rows

    def _table(self, i: int):
        """File i as an Arrow table over its memory map (zero-copy: pages are read when rows are)."""
        import pyarrow as pa
        import pyarrow.ipc as ipc

        if i in self._tables:
            return self._tables[i]
        path = self.folder / self.files[i]["file"]
        try:
            table = ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        except (OSError, pa.ArrowInvalid) as e:
            raise IntegrityError(f"{path} is unreadable: {' '.join(str(e).split())[:200]}") from e
        if table.num_rows != self.files[i]["rows"]:
            raise IntegrityError(f"{path}: {table.num_rows} rows, {CORPUS_META} says {self.files[i]['rows']}")
        self._tables[i] = table
        return table

    def open_all(self) -> None:
        """Open every file (its footer and batch headers, not its rows): a damaged one is refused now."""
        for i in range(len(self.files)):
            self._table(i)

    def _batches(self, i: int):
        """File i's record batches and the row each starts at (take per batch: a take over the whole
        table would first concatenate its chunks, copying the file's text into memory)."""
        if i not in self._batch_starts:
            import numpy as np

            batches = self._table(i).to_batches()
            self._batch_starts[i] = (batches, np.cumsum([0] + [b.num_rows for b in batches]))
        return self._batch_starts[i]

    def take(self, rows) -> list[Passage]:
        """The passages at these row numbers, in the order given; only their pages are read."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.rows):
            raise IndexError(f"row {int(rows.max() if rows.max() >= self.rows else rows.min())} is outside "
                             f"the corpus' {self.rows} rows")
        starts = np.asarray(self.starts, dtype=np.int64)
        which = np.searchsorted(starts, rows, side="right") - 1
        out: list[Passage | None] = [None] * len(rows)
        for i in np.unique(which):
            pos = np.flatnonzero(which == i)
            local = rows[pos] - starts[i]
            batches, bstarts = self._batches(int(i))
            bwhich = np.searchsorted(bstarts, local, side="right") - 1
            for b in np.unique(bwhich):
                bpos = pos[bwhich == b]
                part = batches[b].take(local[bwhich == b] - bstarts[b])
                cols = [part.column(c).to_pylist() for c in ("id", "title", "text")]
                for j, p, t, x in zip(bpos, *cols):
                    out[j] = Passage(p, t, x)
        return out  # type: ignore[return-value]

    def id_batches(self, lo: int = 0, hi: int | None = None):
        """The id column of rows [lo, hi) as Arrow arrays, file by file (no Python string per row)."""
        hi = self.rows if hi is None else min(hi, self.rows)
        for i, start in enumerate(self.starts):
            end = start + self.files[i]["rows"]
            if end <= lo or start >= hi:
                continue
            col = self._table(i).column("id").slice(max(lo - start, 0), min(hi, end) - max(lo, start))
            yield col.combine_chunks()

    def passages(self, lo: int = 0, hi: int | None = None) -> list[Passage]:
        """Rows [lo, hi) as passages, reading only the files that hold them."""
        hi = self.rows if hi is None else min(hi, self.rows)
        out: list[Passage] = []
        for i, start in enumerate(self.starts):
            end = start + self.files[i]["rows"]
            if end <= lo or start >= hi:
                continue
            part = self._table(i).slice(max(lo - start, 0), min(hi, end) - max(lo, start))
            out.extend(Passage(*row) for row in zip(*(part.column(c).to_pylist() for c in ("id", "title", "text"))))
        return out

    def with_titles(self, titles: Iterable[str]) -> Iterator[Passage]:
        """The passages whose title, NFKC- and white-space normalised, is one of `titles` (normalised alike): the
        title column of each file is normalised and matched in Arrow, and only the matching rows are read."""
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = pa.array(sorted({norm_title(t) for t in titles}), pa.string())
        for i in range(len(self.files)):
            table = self._table(i)
            normed = pc.utf8_normalize(table.column("title"), form="NFKC")
            normed = pc.utf8_trim_whitespace(pc.replace_substring_regex(normed, pattern=r"\s+", replacement=" "))
            part = table.filter(pc.is_in(normed, value_set=wanted))
            for pid, title, text in zip(*(part.column(c).to_pylist() for c in ("id", "title", "text"))):
                yield Passage(pid, title, text)


def norm_title(title: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", title).split())
