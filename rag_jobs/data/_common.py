"""Plumbing shared by the dataset readers: located errors, record iteration, field checks, the builder.

Every problem found in an input is raised as a `DataError` whose message is one line that starts with
the place it was found (`path:line`, or `source row N` for rows of a hub dataset).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_jobs.data.records import Dataset, Example, Passage
from rag_jobs.errors import DataError

_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_WS = re.compile(r"[ \t\n\r]*")
# NUL and lone surrogates (only reachable through JSON escapes) cannot be stored, embedded or printed safely.
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_SLUG_CHARS = re.compile(r"[^0-9a-z]+")
_MAX_SHOWN = 60


def shown(value: object) -> str:
    """A short, one-line repr of a value for an error message."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def hub_parts(spec: str, arg: str, what: str = "dataset spec") -> tuple[str, str | None, str | None]:
    """(name, config, split) of the `NAME[:CONFIG][@SPLIT]` after `hf:`, or a DataError naming the spec."""
    rest, _, split = arg.partition("@")
    name, _, config = rest.partition(":")
    if not name or (not split and "@" in arg) or ":" in config:
        raise DataError(one_line(f"{what} {spec!r}: expected hf:NAME[:CONFIG][@SPLIT]"))
    return name, config or None, split or None


@dataclass(frozen=True)
class Where:
    """Where a record came from: a file and its 1-based line, or a hub dataset and its 0-based row."""

    source: str
    line: int | None = None
    unit: str = "line"

    def __str__(self) -> str:
        if self.line is None:
            return self.source
        if self.unit == "line":
            return f"{self.source}:{self.line}"
        return f"{self.source} {self.unit} {self.line}"

    def error(self, problem: str) -> DataError:
        return DataError(one_line(f"{self}: {problem}"))


def existing_file(path: str | Path, what: str = "file") -> Path:
    """The path of an existing regular file, or a DataError naming the path."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(one_line(f"{p}: no such {what}"))
    if not p.is_file():
        raise DataError(one_line(f"{p}: not a file (expected a {what})"))
    return p


def existing_dir(path: str | Path, what: str = "directory") -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(one_line(f"{p}: no such {what}"))
    if not p.is_dir():
        raise DataError(one_line(f"{p}: not a directory (expected a {what})"))
    return p


def iter_json_records(path: str | Path) -> Iterator[tuple[Where, dict[str, Any]]]:
    """Each record of a JSON Lines file, or of a JSON file holding one list of records, with its line.

    The format is told by the first non-blank character: `[` is a JSON list, anything else JSON Lines
    (blank lines are skipped). Every record must be a JSON object.
    """
    p = existing_file(path)
    try:
        with p.open("rb") as f:
            head = f.read(4096)
            if head.startswith(_UTF8_BOM):
                head = head[len(_UTF8_BOM) :]
            if head.lstrip(b" \t\r\n").startswith(b"["):
                yield from _iter_json_list(p)
            else:
                f.seek(0)
                yield from _iter_json_lines(p, f)
    except OSError as e:
        raise DataError(one_line(f"{p}: cannot read: {e.strerror or e}")) from e


def _iter_json_lines(p: Path, f: Iterable[bytes]) -> Iterator[tuple[Where, dict[str, Any]]]:
    source = str(p)
    for lineno, raw in enumerate(f, start=1):
        if lineno == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        where = Where(source, lineno)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise where.error(f"invalid UTF-8 (byte {e.start + 1} of the line)") from None
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise where.error(f"bad JSON: {e.msg} (column {e.colno})") from None
        except RecursionError:
            raise where.error("bad JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise where.error(f"expected a JSON object per line, got a {type_name(obj)}")
        yield where, obj


class _LineCounter:
    """Line numbers of increasing offsets into one text, counted incrementally."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 1

    def at(self, pos: int) -> int:
        if pos < self._pos:
            return self._text.count("\n", 0, pos) + 1
        self._line += self._text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line


def _iter_json_list(p: Path) -> Iterator[tuple[Where, dict[str, Any]]]:
    source = str(p)
    data = p.read_bytes()
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Where(source, line).error("invalid UTF-8") from None
    del data
    lines = _LineCounter(text)
    decoder = json.JSONDecoder()
    pos = _JSON_WS.match(text, 0).end() + 1  # just past the opening bracket
    pos = _JSON_WS.match(text, pos).end()
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            where = Where(source, lines.at(pos))
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise Where(source, e.lineno).error(f"bad JSON: {e.msg} (column {e.colno})") from None
            except RecursionError:
                raise where.error("bad JSON: nested too deeply") from None
            if not isinstance(obj, dict):
                raise where.error(f"expected a list of JSON objects, found a {type_name(obj)}")
            yield where, obj
            pos = _JSON_WS.match(text, pos).end()
            if text.startswith(",", pos):
                pos = _JSON_WS.match(text, pos + 1).end()
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            if pos >= len(text):
                raise Where(source, lines.at(pos)).error("bad JSON: the list is not closed (missing ']')")
            raise Where(source, lines.at(pos)).error("bad JSON: expected ',' or ']' after a record")
    pos = _JSON_WS.match(text, pos).end()
    if pos != len(text):
        raise Where(source, lines.at(pos)).error("bad JSON: extra data after the list")


# --- field checks -------------------------------------------------------------------------------------


def require(obj: Mapping[str, Any], key: str, where: Where, hint: str = "") -> Any:
    """The value of a required field."""
    if key not in obj:
        raise where.error(f"missing field {key!r}{hint}")
    return obj[key]


def first_present(obj: Mapping[str, Any], keys: tuple[str, ...], where: Where, hint: str = "") -> Any:
    """The value of the first of several alternative field names that is present."""
    for key in keys:
        if key in obj:
            return obj[key]
    names = " or ".join(repr(k) for k in keys)
    raise where.error(f"missing field {names}{hint}")


def check_chars(text: str, where: Where, what: str) -> str:
    bad = _BAD_CHARS.search(text)
    if bad is not None:
        kind = "a NUL character" if bad.group() == "\x00" else "an unpaired surrogate"
        raise where.error(f"field {what!r} contains {kind} (at offset {bad.start()})")
    return text


def as_str(value: Any, where: Where, what: str, *, allow_empty: bool = False) -> str:
    """A string field, checked for bad characters and stripped; empty is an error unless allowed."""
    if not isinstance(value, str):
        raise where.error(f"field {what!r} must be a string, got a {type_name(value)}")
    text = check_chars(value, where, what).strip()
    if not text and not allow_empty:
        raise where.error(f"field {what!r} is empty")
    return text


def as_id(value: Any, where: Where, what: str) -> str:
    """An identifier: a non-empty string or an integer (kept as its decimal string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise where.error(f"field {what!r} must be a string or an integer, got a {type_name(value)}")
    return as_str(value, where, what)


def as_list(value: Any, where: Where, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise where.error(f"field {what!r} must be a list, got a {type_name(value)}")
    return value


def as_object(value: Any, where: Where, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise where.error(f"field {what!r} must be an object, got a {type_name(value)}")
    return value


def as_bool(value: Any, where: Where, what: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(f"field {what!r} must be true or false, got a {type_name(value)}")
    return value


def as_answers(value: Any, where: Where, what: str) -> tuple[str, ...]:
    """A list of answer strings: stripped, empty ones left out, duplicates removed, order kept."""
    items = as_list(value, where, what)
    answers: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise where.error(f"field {what!r} item {i} must be a string, got a {type_name(item)}")
        text = check_chars(item, where, what).strip()
        if text and text not in answers:
            answers.append(text)
    if not answers:
        raise where.error(f"field {what!r} has no non-empty answer")
    return tuple(answers)


def as_ids(value: Any, where: Where, what: str) -> tuple[str, ...]:
    """A list of identifiers, duplicates removed, order kept."""
    items = as_list(value, where, what)
    ids: list[str] = []
    for i, item in enumerate(items):
        ident = as_id(item, where, f"{what}[{i}]")
        if ident not in ids:
            ids.append(ident)
    return tuple(ids)


def passage_id(title: str, text: str) -> str:
    """A stable id for a passage known only by its title and text: a slug of the title and a short hash.

    The slug keeps ids readable; the sha1 of title and text keeps two passages that share a title but
    differ in text apart, and gives the same passage the same id in every record and every run.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_CHARS.sub("-", ascii_title.lower()).strip("-")[:48].rstrip("-") or "p"
    digest = hashlib.sha1(f"{title}\x1f{text}".encode()).hexdigest()[:12]
    return f"{slug}-{digest}"


# --- the builder --------------------------------------------------------------------------------------


class DatasetBuilder:
    """Collects passages and examples with their locations, then checks them as a whole.

    Checks: duplicate example ids, duplicate passage ids (identical passages under a derived id are
    merged instead when asked), gold ids that are not in the corpus, an empty corpus, no questions.
    Passages with empty text are dropped and counted; gold references to them are dropped too.
    """

    def __init__(self, name: str, source: str, fmt: str) -> None:
        self.name = name
        self.source = source
        self.format = fmt
        self.counts: Counter[str] = Counter()
        self._examples: list[Example] = []
        self._example_where: dict[str, Where] = {}
        self._passages: dict[str, Passage] = {}
        self._passage_seen: dict[str, tuple[Passage, Where]] = {}
        self._dropped: set[str] = set()

    def add_passage(self, passage: Passage, where: Where, *, merge_identical: bool) -> None:
        seen = self._passage_seen.get(passage.id)
        if seen is not None:
            first, first_where = seen
            if merge_identical and first == passage:
                self.counts["passage_duplicates_merged"] += 1
                return
            raise where.error(f"duplicate passage id {shown(passage.id)} (first at {first_where})")
        self._passage_seen[passage.id] = (passage, where)
        if not passage.text:
            self._dropped.add(passage.id)
            self.counts["passages_dropped_empty"] += 1
            return
        self._passages[passage.id] = passage

    @property
    def n_passages(self) -> int:
        """Passages kept so far (non-empty, duplicates merged)."""
        return len(self._passages)

    def add_example(self, example: Example, where: Where) -> None:
        first = self._example_where.get(example.id)
        if first is not None:
            raise where.error(f"duplicate question id {shown(example.id)} (first at {first})")
        self._example_where[example.id] = where
        self._examples.append(example)

    def build(self, *, require_corpus: bool, corpus_source: str | None = None, **meta: Any) -> Dataset:
        if not self._examples:
            raise DataError(one_line(f"{self.source}: no questions"))
        if require_corpus and not self._passages:
            where = corpus_source or self.source
            raise DataError(one_line(f"{where}: empty corpus (no passage with non-empty text)"))
        examples: list[Example] = []
        for ex in self._examples:
            kept: list[str] = []
            for gid in ex.gold_passage_ids:
                if gid in self._passages:
                    kept.append(gid)
                elif gid in self._dropped:
                    self.counts["gold_ids_dropped_empty"] += 1
                else:
                    in_corpus = f" ({corpus_source})" if corpus_source else ""
                    raise self._example_where[ex.id].error(
                        f"gold passage id {shown(gid)} of question {shown(ex.id)} "
                        f"is not in the corpus{in_corpus}"
                    )
            if len(kept) != len(ex.gold_passage_ids):
                ex = dataclasses.replace(ex, gold_passage_ids=tuple(kept))
            examples.append(ex)
        corpus = list(self._passages.values())
        full_meta: dict[str, Any] = {
            "format": self.format,
            "source": self.source,
            "examples": len(examples),
            "passages": len(corpus),
            "examples_with_gold": sum(1 for ex in examples if ex.gold_passage_ids),
            "passages_dropped_empty": 0,
            "passage_duplicates_merged": 0,
            "gold_ids_dropped_empty": 0,
        }
        full_meta.update(meta)
        full_meta.update(self.counts)
        return Dataset(
            name=self.name,
            examples=examples,
            corpus=corpus,
            has_context_labels=has_context_labels(examples, corpus),
            meta=full_meta,
        )


def records_dataset(records: Iterable[tuple[Where, Mapping[str, Any]]],
                    convert: Callable[[Mapping[str, Any], Where, DatasetBuilder], None], *, name: str, source: str,
                    fmt: str, require_corpus: bool, **counters: int) -> Dataset:
    """The reader skeleton every dataset format shares: each located record through `convert` into one
    builder, counted, then the checked Dataset (`counters`: the format's own counts, starting at 0)."""
    builder = DatasetBuilder(name, source, fmt)
    for where, obj in records:
        builder.counts["records"] += 1
        convert(obj, where, builder)
    return builder.build(require_corpus=require_corpus, records=0, **counters)


def has_context_labels(examples: list[Example], corpus: list[Passage] | None = None) -> bool:
    """True when most questions (more than half) name a gold passage (of a non-empty corpus, when given).

    Unlabelled questions are left out of the embedder's ranking loss and counted; one of them no longer turns
    the embedder's fine-tuning off."""
    if not examples or (corpus is not None and not corpus):
        return False
    return 2 * sum(1 for ex in examples if ex.gold_passage_ids) > len(examples)
