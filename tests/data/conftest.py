"""Helpers for the dataset tests: tiny files written into tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from rag_jobs.errors import DataError, RagJobsError


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write one JSON value per line (strings are written verbatim, for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else _dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _dumps(row: Any) -> str:
    text = json.dumps(row, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates can only be written as JSON escapes
        return json.dumps(row)
    return text


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Callable[..., Path]:
    def make(rows: Iterable[Any], name: str = "data.jsonl") -> Path:
        return write_jsonl(tmp_path / name, rows)

    return make


def _assert_data_error(err: RagJobsError, *fragments: str) -> None:
    assert isinstance(err, DataError), f"expected a DataError, got {type(err).__name__}: {err}"
    assert err.exit_code == 2
    message = str(err)
    assert "\n" not in message, message
    assert "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.fixture
def data_error() -> Callable[..., None]:
    """Check that an error is a DataError (exit code 2) whose one-line message holds every fragment."""
    return _assert_data_error
