"""Datasets from the Hugging Face hub, converted with the same code as the file readers.

Needs the optional `datasets` package (imported only here, only when called) and a network. Rows are
recognised by their fields: HotPotQA rows (`context` and `supporting_facts`) go through the HotPotQA
converter, PopQA rows (`possible_answers`) through the PopQA one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rag_jobs.data._common import Where, one_line, shown
from rag_jobs.data.hotpotqa import hotpotqa_dataset
from rag_jobs.data.popqa import popqa_dataset
from rag_jobs.data.records import Dataset
from rag_jobs.errors import DataError, TransientError

#: Splits tried, in order, when none is given and the dataset has several.
PREFERRED_SPLITS = ("validation", "test", "train")


def load_from_hub(name: str, config: str | None = None, split: str | None = None) -> Dataset:
    """Download `name` (with `config`) from the hub and convert the rows of one split.

    Without `split`, a dataset with one split uses it, otherwise the first of PREFERRED_SPLITS present.
    """
    source = hub_source(name, config, split)
    try:
        datasets = importlib.import_module("datasets")
    except ImportError:
        raise DataError(
            f"{source}: the Hugging Face 'datasets' package is not installed; run `pip install datasets`, "
            "or download the data and use hotpotqa:PATH, popqa:PATH or jsonl:DIR"
        ) from None
    try:
        loaded = datasets.load_dataset(name, config, split=split)
    except FileNotFoundError as e:
        raise DataError(one_line(f"{source}: not found on the hub: {e}")) from e
    except (ConnectionError, TimeoutError, OSError) as e:
        raise TransientError(one_line(f"{source}: download failed: {e}")) from e
    except ValueError as e:
        raise DataError(one_line(f"{source}: {e}")) from e
    if split is None and isinstance(loaded, Mapping):
        split = _pick_split(list(loaded), source)
        loaded = loaded[split]
        source = hub_source(name, config, split)
    ds = convert_hub_rows(loaded, source=source)
    ds.meta.update(hub_name=name, hub_config=config, hub_split=split)
    return ds


def hub_source(name: str, config: str | None, split: str | None) -> str:
    """The spec-like name of a hub dataset used in messages and meta: hf:NAME[:CONFIG][@SPLIT]."""
    text = f"hf:{name}"
    if config:
        text += f":{config}"
    if split:
        text += f"@{split}"
    return text


def convert_hub_rows(rows: Iterable[Mapping[str, Any]], *, source: str) -> Dataset:
    """Convert hub rows (HotPotQA- or PopQA-shaped, told by the first row) with the file readers' code."""
    iterator = iter(rows)
    try:
        first = next(iterator)
    except StopIteration:
        raise DataError(one_line(f"{source}: no rows")) from None
    if not isinstance(first, Mapping):
        raise DataError(one_line(f"{source} row 0: expected a mapping of fields, got {type(first).__name__}"))
    located = _located(first, iterator, source)
    if "context" in first and "supporting_facts" in first:
        return hotpotqa_dataset(located, source=source)
    if "possible_answers" in first:
        return popqa_dataset(located, source=source)
    raise DataError(
        one_line(
            f"{source} row 0: cannot tell the dataset kind from its fields {shown(sorted(first))}: expected "
            "HotPotQA ('context', 'supporting_facts') or PopQA ('possible_answers')"
        )
    )


def _located(
    first: Mapping[str, Any], rest: Iterator[Mapping[str, Any]], source: str
) -> Iterator[tuple[Where, Mapping[str, Any]]]:
    yield Where(source, 0, "row"), first
    for i, row in enumerate(rest, start=1):
        where = Where(source, i, "row")
        if not isinstance(row, Mapping):
            raise where.error(f"expected a mapping of fields, got {type(row).__name__}")
        yield where, row


def _pick_split(names: list[str], source: str) -> str:
    if len(names) == 1:
        return names[0]
    for name in PREFERRED_SPLITS:
        if name in names:
            return name
    raise DataError(one_line(f"{source}: several splits {shown(names)}; name one as hf:NAME[:CONFIG]@SPLIT"))
