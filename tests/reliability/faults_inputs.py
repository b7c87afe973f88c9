"""Bad-input fault injection: generate bad inputs, feed each to the real code path, classify the outcome.

Plain functions, no pytest: every `run_*` function takes a scratch folder `root` (it works in
`root/sandbox`, plants bait in `root/outside`) and returns a dict::

    {"inputs": N, "clean_rejections": N, "accepted": N, "crashes": 0, "hangs": 0, "escapes": 0,
     "wrong_accepts": 0, "wrong_rejections": 0, "untidy_rejections": 0, "code_executed": 0,
     "must_reject": N, "failures": ["<case>: <what happened>", ...]}

Outcomes:
  clean_rejection   a typed `UserError` (exit code 2) whose message is one line; through the CLI or an
                    entrypoint: exit code 2, no traceback, and stderr is exactly one line
                    `rag-jobs: error: ...` (`<kind>: error: ...` for an entrypoint) naming the problem
  crash             any other exception, a traceback, another exit code
  hang              the case did not finish within its time limit
  escape            a file appeared (or the bait disappeared) outside the sandbox
  accepted          no error; checked against what accepting means for that input (a dataset is
                    checked record by record): a bad input that is accepted is a `wrong_accept`
  untidy_rejection  a typed UserError whose message spans several lines (or is absurdly long)
  wrong_rejection   a clean rejection for another reason than the bad value (a valid input rejected,
                    or the CLI stopping on the guard store instead of on the bad flag)
  code_executed     a malicious pickle's payload ran (its marker file exists)

Every case is a real call: `load_dataset`, `load_index`, `FaissRetriever.search`, `load_embedder`,
`load_generator`, `train` (resume from a checkpoint), `parse_config`, `build_graph`, the stores, the
layout, `fetch_step`, `load_graph`, and `python -m rag_jobs.cli` / `python -m rag_jobs.jobs.*` as
subprocesses (with HOME, TMPDIR and RAG_JOBS_CACHE inside the sandbox).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import rag_jobs
from rag_jobs.errors import RagJobsError, UserError

REPO = Path(rag_jobs.__file__).resolve().parents[1]
CASE_TIMEOUT_S = 30.0  # one in-process case
CLI_TIMEOUT_S = 90.0  # one subprocess
MAX_MESSAGE_CHARS = 2000  # a "one-line" message longer than this is not readable either
MiB = 1024 * 1024

CLEAN, ACCEPTED, CRASH, HANG, UNTIDY = "clean_rejection", "accepted", "crash", "hang", "untidy_rejection"

# --------------------------------------------------------------------------------------------------
# outcomes and the tally
# --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # CLEAN | ACCEPTED | CRASH | HANG | UNTIDY
    detail: str = ""
    value: Any = None  # what an accepted call returned
    error: BaseException | None = None


class Tally:
    """Counts outcomes of one group of cases and describes every non-clean one."""

    def __init__(self) -> None:
        self.inputs = 0
        self.must_reject = 0
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self.kinds: Counter[str] = Counter()  # what kinds of input were generated (fuzzers only)

    def fail(self, counter: str, case: str, what: str) -> None:
        self.counts[counter] += 1
        self.failures.append(f"[{counter}] {case}: {what}")

    def record(self, case: str, outcome: Outcome, *, expect: str, problems: list[str] | None = None,
               escaped: list[str] | None = None, executed: bool = False) -> None:
        """`expect`: 'reject' (must be a clean rejection), 'accept' (must be accepted and sound), 'either'."""
        self.inputs += 1
        if expect == "reject":
            self.must_reject += 1
        if escaped:
            self.fail("escapes", case, f"wrote or removed outside the sandbox: {', '.join(escaped[:5])}")
        if executed:
            self.fail("code_executed", case, "the malicious pickle's payload ran (marker file created)")
        if outcome.kind == CLEAN:
            self.counts["clean_rejections"] += 1
            if expect == "accept":
                self.fail("wrong_rejections", case, f"a valid input was rejected: {outcome.detail}")
        elif outcome.kind == ACCEPTED:
            self.counts["accepted"] += 1
            if expect == "reject":
                self.fail("wrong_accepts", case, f"accepted, should be rejected{_tail(outcome.detail)}")
            elif problems:
                self.fail("wrong_accepts", case, f"accepted but unsound: {'; '.join(problems[:3])}")
        elif outcome.kind == UNTIDY:
            self.fail("untidy_rejections", case, outcome.detail)
        elif outcome.kind == HANG:
            self.fail("hangs", case, outcome.detail)
        else:
            self.fail("crashes", case, outcome.detail)

    def wrong_reason(self, case: str, detail: str, *, expect: str = "reject") -> None:
        """A clean exit 2 that names another problem than the one the case injected."""
        self.inputs += 1
        if expect == "reject":
            self.must_reject += 1
        self.fail("wrong_rejections", case, f"rejected for another reason than the bad value: {detail}")

    def as_dict(self) -> dict[str, Any]:
        keys = ("clean_rejections", "accepted", "crashes", "hangs", "escapes", "wrong_accepts",
                "wrong_rejections", "untidy_rejections", "code_executed")
        out: dict[str, Any] = {"inputs": self.inputs, "must_reject": self.must_reject}
        out.update({k: self.counts.get(k, 0) for k in keys})
        if self.kinds:
            out["kinds"] = dict(sorted(self.kinds.items()))
        out["failures"] = list(self.failures)
        return out


def _tail(detail: str) -> str:
    return f" ({detail})" if detail else ""


def _short(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


class _Hang(BaseException):
    """Raised by the alarm when an in-process case runs past its limit (BaseException: not swallowed)."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """SIGALRM after `seconds` (main thread only; a previously armed timer is restored)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Hang()

    started = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, old_delay - (time.monotonic() - started)),
                             old_interval)


def call(fn: Callable[[], Any], *, timeout: float = CASE_TIMEOUT_S) -> Outcome:
    """Run one in-process case and classify what happened."""
    try:
        with _deadline(timeout):
            value = fn()
    except _Hang:
        return Outcome(HANG, f"still running after {timeout:g}s")
    except UserError as exc:
        message = str(exc)
        if not message.strip():
            return Outcome(UNTIDY, f"{type(exc).__name__} with an empty message", error=exc)
        if "\n" in message or "\r" in message:
            return Outcome(UNTIDY, f"{type(exc).__name__} message spans {len(message.splitlines())} lines: "
                                   f"{_short(message)}", error=exc)
        if len(message) > MAX_MESSAGE_CHARS:
            return Outcome(UNTIDY, f"{type(exc).__name__} message is {len(message)} chars long", error=exc)
        return Outcome(CLEAN, exc.one_line(), error=exc)
    except RagJobsError as exc:  # typed, but not a UserError: a retryable exit code for bad input
        return Outcome(CRASH, f"{type(exc).__name__} (exit code {exc.exit_code}, not 2): {_short(exc)}", error=exc)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the point is to catch everything
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        for frame in reversed(frames):
            if "/rag_jobs/" in frame.filename:
                where = f" at {Path(frame.filename).name}:{frame.lineno} in {frame.name}"
                break
        return Outcome(CRASH, f"untyped {type(exc).__name__}{where}: {_short(exc)}", error=exc)
    return Outcome(ACCEPTED, value=value)


# --------------------------------------------------------------------------------------------------
# the sandbox: where a case may write, and the bait outside it
# --------------------------------------------------------------------------------------------------


class Sandbox:
    """`root/sandbox` is where cases may write; `root/outside` holds bait that must stay as it is."""

    def __init__(self, root: Path, name: str = "sandbox") -> None:
        self.root = Path(root).resolve()
        self.dir = self.root / name
        self.outside = self.root / "outside"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.outside.mkdir(parents=True, exist_ok=True)
        self.victim = self.outside / "victim.txt"
        if not self.victim.exists():
            self.victim.write_text("must survive\n")
        self.marker = self.outside / "PWNED"
        for sub in ("home", "tmp", "cache"):
            (self.dir / sub).mkdir(exist_ok=True)
        self._before = self._outside_files()

    def _outside_files(self) -> set[str]:
        found: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            if here == self.root:  # the sandboxes (of this group and of others) may be written
                dirnames[:] = [d for d in dirnames if not d.startswith("sandbox")]
            for name in filenames:
                found.add(str((here / name).relative_to(self.root)))
        return found

    def escapes(self) -> list[str]:
        """Files that appeared outside the sandbox since the last call, and bait that went missing."""
        now = self._outside_files()
        new = sorted(now - self._before)
        if not self.victim.exists():
            new.append(f"{self.victim.relative_to(self.root)} (deleted)")
            self.victim.write_text("must survive\n")
        self._before = self._outside_files()
        return new

    def executed(self) -> bool:
        if self.marker.exists():
            self.marker.unlink()
            self._before = self._outside_files()
            return True
        return False

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a subprocess: HOME, TMPDIR and the rag-jobs cache inside the sandbox, offline."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
        env.update(
            HOME=str(self.dir / "home"),
            TMPDIR=str(self.dir / "tmp"),
            RAG_JOBS_CACHE=str(self.dir / "cache"),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            AWS_CONFIG_FILE=str(self.dir / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.dir / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_MAX_ATTEMPTS="1",
            BOTO_CONFIG=str(self.dir / "no-boto-config"),
        )
        env.update(extra)
        return env


def _run_cases(box: Sandbox, tally: Tally, cases: list[tuple], check: Callable[[str, Any], list[str]] | None = None,
               *, timeout: float = CASE_TIMEOUT_S) -> None:
    """Run (name, fn, expect[, fragments]) cases in process, with the escape and marker checks after each.

    `fragments`: words the rejection's message must hold (else it is a rejection for another reason).
    """
    for name, fn, expect, *rest in cases:
        fragments: tuple[str, ...] = rest[0] if rest else ()
        outcome = call(fn, timeout=timeout)
        escaped, executed = box.escapes(), box.executed()
        if outcome.kind == CLEAN and fragments and not all(f.lower() in outcome.detail.lower() for f in fragments):
            tally.wrong_reason(name, f"{outcome.detail} (expected it to name {fragments})", expect=expect)
            continue
        problems = check(name, outcome.value) if (check and outcome.kind == ACCEPTED) else None
        tally.record(name, outcome, expect=expect, problems=problems, escaped=escaped, executed=executed)


# --------------------------------------------------------------------------------------------------
# subprocesses: the CLI and the step entrypoints
# --------------------------------------------------------------------------------------------------


@dataclass
class CliCase:
    name: str
    args: list[str]  # after `python -m`
    expect_in_error: tuple[str, ...]  # each must appear in the one error line (names the bad value)
    prefix: str = "rag-jobs: error: "
    expect: str = "reject"
    env: dict[str, str] | None = None


def _run_subprocess(case: CliCase, box: Sandbox) -> tuple[int | None, str, str]:
    proc = subprocess.Popen([sys.executable, "-m", *case.args], cwd=box.dir, env=case.env or box.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group
        out, err = proc.communicate()
        return None, out, err
    return proc.returncode, out, err


def _classify_cli(case: CliCase, rc: int | None, out: str, err: str) -> tuple[Outcome, bool]:
    """(outcome, rejected for the right reason)."""
    if rc is None:
        return Outcome(HANG, f"still running after {CLI_TIMEOUT_S:.0f}s"), True
    lines = [line for line in err.splitlines() if line.strip()]
    if "Traceback" in out or "Traceback" in err:
        last = lines[-1] if lines else ""
        return Outcome(CRASH, f"exit {rc} with a traceback: {_short(last)}"), True
    if rc == 0:
        return Outcome(ACCEPTED, _short(out.strip().splitlines()[-1] if out.strip() else "")), True
    if rc != 2:
        return Outcome(CRASH, f"exit {rc} (expected 2): {_short(' | '.join(lines[-3:]))}"), True
    if len(lines) != 1 or not lines[0].startswith(case.prefix):
        return Outcome(UNTIDY, f"exit 2 but stderr is {len(lines)} lines: {_short(' | '.join(lines[:4]))}"), True
    line = lines[0]
    if len(line) > MAX_MESSAGE_CHARS:
        return Outcome(UNTIDY, f"exit 2 but the error line is {len(line)} chars long"), True
    right = all(fragment.lower() in line.lower() for fragment in case.expect_in_error)
    return Outcome(CLEAN, line), right


def run_cli_cases(box: Sandbox, cases: list[CliCase], tally: Tally, *, workers: int = 2) -> None:
    """Run subprocess cases (a few at once), then classify each, with the escape and marker checks."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda c: _run_subprocess(c, box), cases))
    escaped = box.escapes()
    executed = box.executed()
    for i, (case, (rc, out, err)) in enumerate(zip(cases, results)):
        outcome, right = _classify_cli(case, rc, out, err)
        if outcome.kind == CLEAN and not right and case.expect == "reject":
            tally.wrong_reason(case.name, f"{outcome.detail} (expected it to name {case.expect_in_error})")
            continue
        # run concurrently: an escape or a payload is charged to the whole batch, on its first case
        tally.record(case.name, outcome, expect=case.expect, escaped=escaped if i == 0 else None,
                     executed=executed if i == 0 else False)


# --------------------------------------------------------------------------------------------------
# 1. dataset rows (hypothesis): HotPotQA, PopQA, the plain JSONL format
# --------------------------------------------------------------------------------------------------

_PLACEHOLDER = "\ue000"  # replaced by raw bytes after encoding (bad UTF-8, raw NUL)
_BAD_BYTES = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82", b"\x00")
_BIG = (1 * MiB, 3 * MiB)

_REQUIRED = {
    "hotpotqa": ("_id", "question", "answer", "supporting_facts", "context"),
    "hotpotqa-hf": ("id", "question", "answer", "supporting_facts", "context"),
    "popqa": ("id", "question", "possible_answers"),
    "questions": ("id", "question", "answers"),
    "corpus": ("id", "text"),
}


def _get(obj: Any, path: tuple) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _set(obj: Any, path: tuple, value: Any) -> None:
    _get(obj, path[:-1])[path[-1]] = value


def _all_paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    paths = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            paths.append((*prefix, key))
            paths.extend(_all_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            paths.append((*prefix, i))
            paths.extend(_all_paths(value, (*prefix, i)))
    return paths


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates can only be written as JSON escapes
        return json.dumps(obj)
    return text


def _encode_records(records: list[Any], fmt: str, bad: bytes | None) -> bytes:
    if fmt == "list":
        text = "[\n" + ",\n".join(_dumps(r) for r in records) + "\n]\n"
    else:
        text = "".join(_dumps(r) + "\n" for r in records)
    data = text.encode("utf-8", errors="surrogatepass")
    if bad is not None:
        data = data.replace(_PLACEHOLDER.encode("utf-8"), bad)
    return data


def _strategies():
    """The hypothesis strategies (imported lazily: only the row fuzzers need hypothesis)."""
    from hypothesis import strategies as st

    text = st.text(alphabet="abcdefgh XYZ éøß中文 0123-", min_size=1, max_size=12).filter(lambda s: s.strip())
    scalar = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
              | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
              | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2))
    any_json = st.recursive(scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                           max_size=3),
                            max_leaves=6)
    return st, text, any_json


def _hotpot_record(draw, st, text, i: int, layout: str) -> tuple[dict, list[tuple], list[tuple], list[tuple]]:
    """(record, required text paths, passage text paths, all text paths)."""
    n_par = draw(st.integers(1, 3))
    titles = [f"T{i}-{j} {draw(text)}" for j in range(n_par)]
    sentences = [[draw(text) + " " for _ in range(draw(st.integers(1, 2)))] for _ in range(n_par)]
    support = draw(st.integers(0, n_par - 1))
    ident: Any = draw(st.sampled_from([f"q{i}", i, f"5a8b{i:04x}"]))
    id_key = "_id" if layout == "original" else "id"
    rec: dict[str, Any] = {id_key: ident, "question": draw(text) + "?", "answer": draw(text)}
    if layout == "original":
        rec["supporting_facts"] = [[titles[support], 0]]
        rec["context"] = [[t, s] for t, s in zip(titles, sentences)]
        passage_paths = [("context", j, 1, 0) for j in range(n_par)]
        title_paths = [("context", j, 0) for j in range(n_par)]
    else:
        rec["supporting_facts"] = {"title": [titles[support]], "sent_id": [0]}
        rec["context"] = {"title": titles, "sentences": sentences}
        passage_paths = [("context", "sentences", j, 0) for j in range(n_par)]
        title_paths = [("context", "title", j) for j in range(n_par)]
    rec["type"] = "bridge"
    required = [("question",), ("answer",)] + ([(id_key,)] if isinstance(ident, str) else [])
    return rec, required, passage_paths, required + passage_paths + title_paths


def _popqa_record(draw, st, text, i: int, passages: bool | None = None) -> tuple[dict, list[tuple], list[tuple],
                                                                                list[tuple]]:
    ident: Any = draw(st.sampled_from([i, f"pq{i}", 4_000_000 + i]))
    answers = [draw(text) for _ in range(draw(st.integers(1, 3)))]
    rec: dict[str, Any] = {"id": ident, "subj": draw(text), "question": draw(text) + "?"}
    as_json_string = draw(st.booleans())
    rec["possible_answers"] = json.dumps(answers) if as_json_string else answers
    required = [("question",)] + ([("id",)] if isinstance(ident, str) else [])
    if not as_json_string and len(answers) == 1:
        required.append(("possible_answers", 0))
    passage_paths: list[tuple] = []
    title_paths: list[tuple] = []
    if passages if passages is not None else draw(st.booleans()):
        n = draw(st.integers(1, 3))
        rec["passages"] = [{"title": draw(text), "text": draw(text), "is_supporting": k == 0} for k in range(n)]
        passage_paths = [("passages", k, "text") for k in range(n)]
        title_paths = [("passages", k, "title") for k in range(n)]
    return rec, required, passage_paths, required + passage_paths + title_paths


MUTATIONS = ("none", "drop_field", "nul", "surrogate", "bad_bytes", "wrong_type", "random_record", "whitespace",
             "empty_passage", "big_passage", "duplicate_id")
_NEEDS_PASSAGES = ("empty_passage", "big_passage")


def _case_strategy(reader: str, mutation: str):
    """A hypothesis strategy of one fuzz case with the given mutation: {files, expect, mutation, big}."""
    st, text, any_json = _strategies()

    @st.composite
    def case(draw):
        mut = mutation
        fmt = "lines"
        files_records: dict[str, list[Any]] = {}
        meta: dict[str, dict[int, tuple]] = {}  # file -> record index -> (required, passage, all text paths)
        if reader == "hotpotqa":
            layout = draw(st.sampled_from(["original", "hf"]))
            fmt = draw(st.sampled_from(["lines", "list"]))
            n = draw(st.integers(1, 3))
            recs, info = [], {}
            for i in range(n):
                rec, req, pas, txt = _hotpot_record(draw, st, text, i, layout)
                recs.append(rec)
                info[i] = (req, pas, txt)
            files_records["data"] = recs
            meta["data"] = info
            required_fields = {"data": _REQUIRED["hotpotqa" if layout == "original" else "hotpotqa-hf"]}
        elif reader == "popqa":
            fmt = draw(st.sampled_from(["lines", "list"]))
            n = draw(st.integers(1, 3))
            recs, info = [], {}
            for i in range(n):
                rec, req, pas, txt = _popqa_record(draw, st, text, i, True if mut in _NEEDS_PASSAGES else None)
                recs.append(rec)
                info[i] = (req, pas, txt)
            files_records["data"] = recs
            meta["data"] = info
            required_fields = {"data": _REQUIRED["popqa"]}
        else:
            n_p = draw(st.integers(1, 3))
            corpus, cinfo = [], {}
            for k in range(n_p):
                pid: Any = draw(st.sampled_from([f"p{k}", k, f"doc-{k}"]))
                row: dict[str, Any] = {"id": pid, "title": draw(text), "text": draw(text)}
                corpus.append(row)
                req = [("id",)] if isinstance(pid, str) else []
                cinfo[k] = (req, [("text",)], [*req, ("text",), ("title",)])
            n_q = draw(st.integers(1, 3))
            questions, qinfo = [], {}
            for i in range(n_q):
                qid: Any = draw(st.sampled_from([f"q{i}", i]))
                row = {"id": qid, "question": draw(text) + "?", "answers": [draw(text)]}
                if draw(st.booleans()):
                    row["gold_passage_ids"] = [corpus[draw(st.integers(0, n_p - 1))]["id"]]
                questions.append(row)
                req = [("question",), ("answers", 0)] + ([("id",)] if isinstance(qid, str) else [])
                qinfo[i] = (req, [], req)
            files_records = {"corpus": corpus, "questions": questions}
            meta = {"corpus": cinfo, "questions": qinfo}
            required_fields = {"corpus": _REQUIRED["corpus"], "questions": _REQUIRED["questions"]}

        if reader == "jsonl" and mut in _NEEDS_PASSAGES:
            target = "corpus"
        elif reader == "jsonl" and mut == "whitespace":
            target = "questions"  # a corpus row may have no required text (an integer id, an optional title)
        else:
            target = draw(st.sampled_from(sorted(files_records)))
        recs = files_records[target]
        idx = draw(st.integers(0, len(recs) - 1))
        required, passages, texts = meta[target][idx]
        expect, bad, big = "either", None, 0
        rec = recs[idx]
        if mut == "none":
            expect = "accept"
        elif mut == "drop_field":
            del rec[draw(st.sampled_from(required_fields[target]))]
            expect = "reject"
        elif mut in ("nul", "surrogate", "bad_bytes"):
            path = draw(st.sampled_from(texts))
            value = _get(rec, path)
            pos = draw(st.integers(0, len(value)))
            inject = {"nul": "\x00", "surrogate": "\ud800", "bad_bytes": _PLACEHOLDER}[mut]
            _set(rec, path, value[:pos] + inject + value[pos:])
            if mut == "bad_bytes":
                bad = draw(st.sampled_from(_BAD_BYTES))
            expect = "reject"
        elif mut == "wrong_type":
            path = draw(st.sampled_from(_all_paths(rec)))
            _set(rec, path, draw(any_json))
        elif mut == "random_record":
            recs[idx] = draw(any_json)
        elif mut == "whitespace" and required:
            path = draw(st.sampled_from(required))
            _set(rec, path, draw(st.sampled_from(["", " ", "\t\n ", "\u3000"])))
            expect = "reject"
        elif mut == "empty_passage" and passages:
            _set(rec, draw(st.sampled_from(passages)), draw(st.sampled_from(["", "   "])))
        elif mut == "big_passage" and passages:
            big = draw(st.sampled_from(_BIG))
            _set(rec, draw(st.sampled_from(passages)), "lorem ipsum " * (big // 12))
            expect = "accept"
        elif mut == "duplicate_id":
            twin = json.loads(json.dumps(rec))
            ident = rec["_id"] if "_id" in rec else rec["id"]
            same: Any = draw(st.sampled_from([ident, str(ident)]))
            twin["_id" if "_id" in rec else "id"] = same
            if "question" in twin:
                twin["question"] = twin["question"] + " again"
            elif "text" in twin:
                twin["text"] = twin["text"] + " again"
            recs.append(twin)
            expect = "reject"
        elif mut in ("empty_passage", "big_passage", "whitespace"):
            mut = "none"
            expect = "accept"
        files = {name: _encode_records(records, fmt, bad if name == target else None)
                 for name, records in files_records.items()}
        return {"files": files, "expect": expect, "mutation": f"{mut}@{target}[{idx}]", "big": big}

    return case()


_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")


def dataset_problems(ds: Any, *, big: int = 0) -> list[str]:
    """What is wrong with a Dataset a reader accepted (empty: it is sound)."""
    problems = []

    def bad_text(value: Any, what: str, *, allow_empty: bool = False) -> None:
        if not isinstance(value, str):
            problems.append(f"{what} is a {type(value).__name__}, not a string")
        elif not allow_empty and not value.strip():
            problems.append(f"{what} is empty")
        elif _NUL_OR_SURROGATE.search(value):
            problems.append(f"{what} holds a NUL or a lone surrogate")

    if not ds.examples:
        problems.append("no examples")
    ids = [ex.id for ex in ds.examples]
    if len(set(ids)) != len(ids):
        problems.append("duplicate example ids")
    pids = [p.id for p in ds.corpus]
    if len(set(pids)) != len(pids):
        problems.append("duplicate passage ids")
    known = set(pids)
    for ex in ds.examples:
        bad_text(ex.id, f"example id {ex.id!r}")
        bad_text(ex.question, f"question of {ex.id!r}")
        if not isinstance(ex.answers, tuple) or not ex.answers:
            problems.append(f"answers of {ex.id!r} are {ex.answers!r}")
        for a in ex.answers:
            bad_text(a, f"an answer of {ex.id!r}")
        for g in ex.gold_passage_ids:
            if g not in known:
                problems.append(f"gold id {g!r} of {ex.id!r} is not in the corpus")
    for p in ds.corpus:
        bad_text(p.id, f"passage id {p.id!r}")
        bad_text(p.title, f"title of {p.id!r}", allow_empty=True)
        bad_text(p.text, f"text of {p.id!r}")
    if big and not any(len(p.text) >= big - 64 for p in ds.corpus):
        problems.append(f"the {big // MiB} MiB passage did not come through whole")
    return problems


def run_dataset_row_faults(root: Path, reader: str, *, max_examples: int = 60) -> dict[str, Any]:
    """Hypothesis-generated rows for one reader ('hotpotqa', 'popqa' or 'jsonl'), read by `load_dataset`.

    Each example is a small file (or a questions.jsonl + corpus.jsonl pair) with one mutation: a missing
    field, a wrong type, a NUL, a lone surrogate, raw invalid UTF-8, an empty or a multi-MB passage, a
    duplicate id, a random JSON value as a record, or none; `max_examples` is shared evenly among the
    mutations. Fixed seed (derandomized), no shrinking, no example database.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    from rag_jobs.data import load_dataset

    box = Sandbox(root, f"sandbox-rows-{reader}")
    tally = Tally()
    counter = iter(range(10**9))
    per_mutation = max(2, round(max_examples / len(MUTATIONS)))

    def one(case: dict[str, Any]) -> None:
        folder = box.dir / f"case-{next(counter):04d}"
        folder.mkdir()
        try:
            if reader == "jsonl":
                (folder / "corpus.jsonl").write_bytes(case["files"]["corpus"])
                (folder / "questions.jsonl").write_bytes(case["files"]["questions"])
                spec = f"jsonl:{folder}"
            else:
                path = folder / "data.json"
                path.write_bytes(case["files"]["data"])
                spec = f"{reader}:{path}"
            outcome = call(lambda: load_dataset(spec))
            problems = dataset_problems(outcome.value, big=case["big"]) if outcome.kind == ACCEPTED else None
            tally.kinds[case["mutation"].split("@")[0]] += 1
            tally.record(f"{reader} {case['mutation']}", outcome, expect=case["expect"], problems=problems,
                         escaped=box.escapes(), executed=box.executed())
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    for mutation in MUTATIONS:  # every kind of bad row gets its share of the examples

        @settings(max_examples=per_mutation, deadline=None, derandomize=True, database=None,
                  phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
        @given(case=_case_strategy(reader, mutation))
        def fuzz(case: dict[str, Any]) -> None:
            one(case)

        fuzz()
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 2. dataset files and specs: empty corpus, empty files, special files, multi-MB passages, bad specs
# --------------------------------------------------------------------------------------------------


def _hotpot_ok(i: int, text: str = "Oslo is the capital of Norway.") -> dict:
    return {"_id": f"q{i}", "question": f"Question {i}?", "answer": "Oslo",
            "supporting_facts": [["Oslo", 0]], "context": [["Oslo", [text]], ["Bergen", ["Bergen is west."]]]}


def _popqa_ok(i: int, text: str | None = None) -> dict:
    rec: dict[str, Any] = {"id": i, "question": f"Who is {i}?", "possible_answers": '["A", "B"]'}
    if text is not None:
        rec["passages"] = [{"title": "A", "text": text, "is_supporting": True}]
    return rec


def _huge_value_in_error(reader: str, ok: dict) -> bytes:
    """A file whose error names a 5 MiB value (a sentence id, a duplicate id): the message must stay short."""
    huge = "i" * (5 * MiB)
    if reader == "hotpotqa":
        rows = [{**ok, "supporting_facts": [["Oslo", huge]]}]
    else:
        rows = [{**ok, "id": huge}, {**ok, "id": huge}]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _write_jsonl_dir(folder: Path, corpus: bytes | list, questions: bytes | list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("questions.jsonl", questions)):
        (folder / name).write_bytes(rows if isinstance(rows, bytes) else _encode_records(rows, "lines", None))
    return folder


def run_dataset_file_faults(root: Path) -> dict[str, Any]:
    """Whole-file faults through `load_dataset` / `check_dataset_spec` / `attach_corpus`."""
    from rag_jobs.data import check_dataset_spec, load_dataset

    box = Sandbox(root, "sandbox-files")
    d = box.dir
    tally = Tally()
    cases: list[tuple[str, Callable[[], Any], str]] = []
    big_text = "word " * (8 * MiB // 5)

    def file_(name: str, data: bytes) -> Path:
        path = d / name
        path.write_bytes(data)
        return path

    fifo = d / "fifo.jsonl"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    for reader, ok in (("hotpotqa", _hotpot_ok(0)), ("popqa", _popqa_ok(0, "A is a.")),):
        bad_files = {
            "empty file": b"",
            "blank lines only": b"\n \n\t\n",
            "BOM only": b"\xef\xbb\xbf",
            "empty JSON list": b"[]",
            "unclosed list": b"[" + json.dumps(ok).encode(),
            "list of a number": b"[1]",
            "JSON null": b"null\n",
            "100k nested lists": b"[" * 100_000 + b"]" * 100_000,
            "100k nested lines": b"[" * 100_000 + b"\n",
            "5 MiB of junk on one line": b"x" * (5 * MiB),
            "invalid UTF-8 in a list file": b'[{"_id": "q\xff1", "id": "q\xff1"}]',
            "duplicate ids": (json.dumps(ok) + "\n" + json.dumps(ok) + "\n").encode(),
            "5 MiB value named in the error": _huge_value_in_error(reader, ok),
        }
        for label, data in bad_files.items():
            path = file_(f"{reader}-{label.replace(' ', '_')}.json", data)
            cases.append((f"{reader}: {label}", lambda s=f"{reader}:{path}": load_dataset(s), "reject"))
        cases.append((f"{reader}: a directory", lambda r=reader: load_dataset(f"{r}:{d}"), "reject"))
        cases.append((f"{reader}: a missing file", lambda r=reader: load_dataset(f"{r}:{d / 'missing.json'}"),
                      "reject"))
        if fifo.exists():
            cases.append((f"{reader}: a FIFO (would block)", lambda r=reader: load_dataset(f"{r}:{fifo}"), "reject"))
        if Path("/dev/zero").exists():
            cases.append((f"{reader}: /dev/zero (endless)", lambda r=reader: load_dataset(f"{r}:/dev/zero"), "reject"))
        big_rec = _hotpot_ok(1, big_text) if reader == "hotpotqa" else _popqa_ok(1, big_text)
        path = file_(f"{reader}-8mib.json", (json.dumps(big_rec) + "\n").encode())
        cases.append((f"{reader}: one 8 MiB passage (valid)", lambda s=f"{reader}:{path}": load_dataset(s), "accept"))
    empty_context = {**_hotpot_ok(0), "context": [], "supporting_facts": []}
    path = file_("hotpotqa-empty-corpus.json", (json.dumps(empty_context) + "\n").encode())
    cases.append(("hotpotqa: empty corpus (no context)", lambda s=f"hotpotqa:{path}": load_dataset(s), "reject"))
    blank_context = {**_hotpot_ok(0), "context": [["Oslo", ["", "  "]]], "supporting_facts": [["Oslo", 0]]}
    path = file_("hotpotqa-blank-corpus.json", (json.dumps(blank_context) + "\n").encode())
    cases.append(("hotpotqa: corpus of blank paragraphs", lambda s=f"hotpotqa:{path}": load_dataset(s), "reject"))
    path = file_("popqa-no-passages.json", (json.dumps(_popqa_ok(0)) + "\n").encode())
    cases.append(("popqa: no passages (valid: needs a corpus later)", lambda s=f"popqa:{path}": load_dataset(s),
                  "accept"))

    q_ok = [{"id": "q1", "question": "Where?", "answers": ["Oslo"], "gold_passage_ids": ["p1"]}]
    c_ok = [{"id": "p1", "title": "Oslo", "text": "Oslo is in Norway."}]
    jsonl_dirs = {
        "empty corpus file": (b"", q_ok),
        "corpus of empty texts": ([{"id": "p1", "text": ""}, {"id": "p2", "text": "  "}],
                                  [{"id": "q1", "question": "Where?", "answers": ["Oslo"]}]),
        "empty questions file": (c_ok, b""),
        "gold id not in the corpus": (c_ok, [{**q_ok[0], "gold_passage_ids": ["p9"]}]),
        "duplicate passage ids": (c_ok + c_ok, q_ok),
        "duplicate question ids": (c_ok, q_ok + q_ok),
        "invalid UTF-8 in the corpus": (b'{"id": "p1", "text": "Oslo \xc3\x28"}\n', q_ok),
    }
    for label, (corpus, questions) in jsonl_dirs.items():
        folder = _write_jsonl_dir(d / f"jsonl-{label.replace(' ', '_')}", corpus, questions)
        cases.append((f"jsonl: {label}", lambda s=f"jsonl:{folder}": load_dataset(s), "reject"))
    folder = d / "jsonl-no-corpus"
    folder.mkdir()
    (folder / "questions.jsonl").write_bytes(_encode_records(q_ok, "lines", None))
    cases.append(("jsonl: no corpus.jsonl", lambda s=f"jsonl:{folder}": load_dataset(s), "reject"))
    cases.append(("jsonl: no corpus.jsonl (check_dataset_spec)", lambda s=f"jsonl:{folder}": check_dataset_spec(s),
                  "reject"))
    if fifo.exists():
        folder = d / "jsonl-fifo"
        folder.mkdir()
        os.mkfifo(folder / "corpus.jsonl")
        (folder / "questions.jsonl").write_bytes(_encode_records(q_ok, "lines", None))
        cases.append(("jsonl: corpus.jsonl is a FIFO (would block)", lambda s=f"jsonl:{folder}": load_dataset(s),
                      "reject"))
    folder = _write_jsonl_dir(d / "jsonl-8mib", [{"id": "p1", "title": "", "text": big_text}], q_ok)
    cases.append(("jsonl: one 8 MiB passage (valid)", lambda s=f"jsonl:{folder}": load_dataset(s), "accept"))

    # attach_corpus: a PopQA file without passages plus a corpus file
    popqa = file_("popqa-for-corpus.json", (json.dumps(_popqa_ok(0)) + "\n").encode())
    corpus_files = {
        "empty corpus file": b"",
        "corpus with duplicate ids": b'{"id": "p1", "text": "a"}\n{"id": "p1", "text": "b"}\n',
        "corpus with invalid UTF-8": b'{"id": "p1", "text": "\xff"}\n',
        "corpus of empty texts": b'{"id": "p1", "text": ""}\n',
        "corpus with a NUL": b'{"id": "p1", "text": "a\\u0000b"}\n',
    }
    for label, data in corpus_files.items():
        cf = file_(f"attach-{label.replace(' ', '_')}.jsonl", data)
        cases.append((f"attach_corpus: {label}", lambda c=cf: load_dataset(f"popqa:{popqa}", corpus=c), "reject"))
    cases.append(("attach_corpus: a missing file",
                  lambda: load_dataset(f"popqa:{popqa}", corpus=d / "missing.jsonl"), "reject"))

    # dataset specs
    specs = ["", "   ", "bogus", "bogus:x", "demo:x", "hotpotqa:", "popqa:", "jsonl:", "hf:", "hf:name@",
             "hf:a:b:c", f"hotpotqa:{d / 'missing.json'}", f"jsonl:{popqa}", "HotPotQA:x", None, 123]
    for spec in specs:
        cases.append((f"load_dataset({spec!r})", lambda s=spec: load_dataset(s), "reject"))
        cases.append((f"check_dataset_spec({spec!r})", lambda s=spec: check_dataset_spec(s), "reject"))

    def check(name: str, value: Any) -> list[str]:
        return dataset_problems(value, big=(8 * MiB - 16) if "8 MiB" in name else 0)

    _run_cases(box, tally, cases, check=check)
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 3. the index: empty corpus, wrong query dimension, corrupt and truncated files
# --------------------------------------------------------------------------------------------------


def _index_fixture(folder: Path, n: int = 6, dim: int = 8):
    import numpy as np

    from rag_jobs.data.records import Passage
    from rag_jobs.index.faiss_index import write_index

    passages = [Passage(f"p{i}", f"T{i}", f"text number {i}") for i in range(n)]
    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype("float32")
    write_index(passages, vectors, folder, embedder_name="tiny")
    return passages, vectors


PASSAGES_ARROW = "passages-00000.arrow"  # an index built from a list keeps its passages' texts in its folder


def _flip(path: Path, at: float = 0.5, *, offset: int | None = None) -> None:
    """Invert one byte: at a fraction of the file, or at an absolute offset."""
    data = bytearray(path.read_bytes())
    i = min(len(data) - 1, offset if offset is not None else int(len(data) * at))
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _rehash(folder: Path) -> None:
    """Make index_meta.json agree with the files as they are now (a meta written after the damage)."""
    from rag_jobs.artifacts.digests import hash_file
    from rag_jobs.index.faiss_index import META_FILE

    meta = json.loads((folder / META_FILE).read_text())
    meta["sha256"] = {name: hash_file(folder / name) for name in meta["sha256"]}
    meta["bytes"] = {name: (folder / name).stat().st_size for name in meta["sha256"]}
    (folder / META_FILE).write_text(json.dumps(meta))


def run_index_faults(root: Path) -> dict[str, Any]:
    """build_index / write_index / load_index / FaissRetriever.search with bad inputs (sha256-checked files)."""
    import numpy as np

    from rag_jobs.index.faiss_index import (
        INDEX_FILE,
        META_FILE,
        VECTORS_FILE,
        build_index,
        load_index,
        write_index,
    )
    from rag_jobs.index.store import IDS_FILE

    box = Sandbox(root, "sandbox-index")
    d = box.dir
    tally = Tally()
    passages, vectors = _index_fixture(d / "ok")
    retriever = load_index(d / "ok")

    def damaged(name: str, damage: Callable[[Path], None]) -> Path:
        folder = d / name
        shutil.copytree(d / "ok", folder)
        damage(folder)
        return folder

    cases: list[tuple[str, Callable[[], Any], str]] = [
        ("build_index: empty corpus", lambda: build_index([], None, d / "e1", embedder_name="x"), "reject"),
        ("write_index: empty corpus", lambda: write_index([], np.zeros((0, 8), "float32"), d / "e2",
                                                          embedder_name="x"), "reject"),
        ("write_index: duplicate passage ids", lambda: write_index([passages[0]] * 2, vectors[:2], d / "e3",
                                                                   embedder_name="x"), "reject"),
        ("write_index: fewer vectors than passages", lambda: write_index(passages, vectors[:3], d / "e4",
                                                                         embedder_name="x"), "reject"),
        ("write_index: unknown factory", lambda: write_index(passages, vectors, d / "e5", embedder_name="x",
                                                             factory="NoSuchIndex"), "reject"),
        ("write_index: IVF with too few vectors", lambda: write_index(passages, vectors, d / "e6", embedder_name="x",
                                                                      factory="IVF64,Flat"), "reject"),
        ("write_index: unknown search parameter", lambda: write_index(passages, vectors, d / "e7",
                                                                      embedder_name="x", search_params="nprobe=4"),
         "reject"),
        ("search: query of the wrong dimension", lambda: retriever.search(np.ones((2, 7), "float32"), 3), "reject"),
        ("search: query of a larger dimension", lambda: retriever.search(np.ones((1, 384), "float32"), 3), "reject"),
        ("search: a 1-D query", lambda: retriever.search(np.ones(8, "float32"), 3), "reject"),
        ("search: a 3-D query", lambda: retriever.search(np.ones((1, 1, 8), "float32"), 3), "reject"),
        ("search: k = 0", lambda: retriever.search(np.ones((1, 8), "float32"), 0), "reject"),
        ("search: k = -5", lambda: retriever.search(np.ones((1, 8), "float32"), -5), "reject"),
        ("search: valid query, k larger than the index", lambda: retriever.search(np.ones((1, 8), "float32"), 50),
         "accept"),
        ("load_index: corrupt index.faiss", lambda: load_index(damaged("c1", lambda f: _flip(f / INDEX_FILE))),
         "reject"),
        ("load_index: truncated index.faiss", lambda: load_index(damaged("c2", lambda f: _truncate(f / INDEX_FILE))),
         "reject"),
        ("load_index: empty index.faiss",
         lambda: load_index(damaged("c3", lambda f: (f / INDEX_FILE).write_bytes(b""))),
         "reject"),
        ("load_index: corrupt vectors.npy", lambda: load_index(damaged("c4", lambda f: _flip(f / VECTORS_FILE, 0.05))),
         "reject"),
        ("load_index: truncated passages-00000.arrow",
         lambda: load_index(damaged("c5", lambda f: _truncate(f / PASSAGES_ARROW))), "reject"),
        ("load_index: truncated vectors.npy (memory-mapped)",
         lambda: load_index(damaged("c10", lambda f: _truncate(f / VECTORS_FILE, 0.9))), "reject"),
        ("load_index: corrupt ids.npy", lambda: load_index(damaged("c11", lambda f: _flip(f / IDS_FILE, 0.9))),
         "reject"),
        ("load_index: missing index.faiss", lambda: load_index(damaged("c6", lambda f: (f / INDEX_FILE).unlink())),
         "reject"),
        ("load_index: index_meta.json not UTF-8",
         lambda: load_index(damaged("c7", lambda f: (f / META_FILE).write_bytes(b"\xff\xfe{"))), "reject"),
        ("load_index: index_meta.json bad JSON",
         lambda: load_index(damaged("c8", lambda f: (f / META_FILE).write_text('{"dim": 8,'))), "reject"),
        ("load_index: not an index folder", lambda: load_index(d / "missing"), "reject"),
        ("load_index: vectors.npy replaced by a pickle (sha mismatch)",
         lambda: load_index(damaged("c9", lambda f: (f / VECTORS_FILE).write_bytes(pickle.dumps(vectors)))), "reject"),
    ]

    def check(name: str, value: Any) -> list[str]:
        if "k larger" in name:
            return [] if len(value.ids[0]) == len(passages) else [f"{len(value.ids[0])} results"]
        return []

    _run_cases(box, tally, cases, check=check)
    return tally.as_dict()


def run_index_forged_meta_faults(root: Path) -> dict[str, Any]:
    """Index folders whose index_meta.json does not protect them: a meta that lists no sha256, one that is
    not an object, one that lacks 'dim', or one rewritten after the damage. `load_index(verify=True)`
    should still answer with an IntegrityError, not a FAISS RuntimeError, a ValueError or a KeyError.
    (`rag-jobs serve --index FOLDER` loads a user's folder this way.)"""
    import numpy as np

    from rag_jobs.index.faiss_index import INDEX_FILE, META_FILE, VECTORS_FILE, load_index
    from rag_jobs.index.store import IDS_FILE

    box = Sandbox(root, "sandbox-index-meta")
    d = box.dir
    tally = Tally()
    _index_fixture(d / "ok")

    def damaged(name: str, damage: Callable[[Path], None]) -> Path:
        folder = d / name
        shutil.copytree(d / "ok", folder)
        damage(folder)
        return folder

    def drop_sha_and_garbage(f: Path) -> None:
        meta = json.loads((f / META_FILE).read_text())
        del meta["sha256"]
        (f / META_FILE).write_text(json.dumps(meta))
        (f / INDEX_FILE).write_bytes(os.urandom(256))

    def drop_dim(f: Path) -> None:
        meta = json.loads((f / META_FILE).read_text())
        del meta["dim"]
        (f / META_FILE).write_text(json.dumps(meta))

    def then_rehash(damage: Callable[[Path], None]) -> Callable[[Path], None]:
        def both(f: Path) -> None:
            damage(f)
            _rehash(f)

        return both

    cases = [
        ("meta without sha256, garbage index.faiss", lambda: load_index(damaged("m1", drop_sha_and_garbage)),
         "reject"),
        ("meta is a JSON list", lambda: load_index(damaged("m2", lambda f: (f / META_FILE).write_text("[]"))),
         "reject"),
        ("meta without 'dim'", lambda: load_index(damaged("m3", drop_dim)), "reject"),
        ("truncated index.faiss, meta rewritten",
         lambda: load_index(damaged("m4", then_rehash(lambda f: _truncate(f / INDEX_FILE))), verify=True), "reject"),
        ("truncated vectors.npy, meta rewritten",
         lambda: load_index(damaged("m5", then_rehash(lambda f: _truncate(f / VECTORS_FILE, 0.2)))), "reject"),
        ("garbage passages-00000.arrow, meta rewritten",
         lambda: load_index(damaged("m6", then_rehash(lambda f: (f / PASSAGES_ARROW).write_bytes(os.urandom(512))))),
         "reject"),
        ("truncated passages-00000.arrow (memory-mapped), meta rewritten",
         lambda: load_index(damaged("m7", then_rehash(lambda f: _truncate(f / PASSAGES_ARROW, 0.7)))), "reject"),
        ("ids.npy of another length, meta rewritten",
         lambda: load_index(damaged("m8", then_rehash(lambda f: np.save(f / IDS_FILE, np.array([b"p0"]))))),
         "reject"),
    ]
    _run_cases(box, tally, cases)
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 4. weights: corrupt safetensors, malicious pickles where rag_jobs loads weights
# --------------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this calls open(marker, 'w'): the marker file proves the code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_pickles(marker: Path, folder: Path) -> dict[str, Path]:
    """Two files whose loading with pickle (a raw pickle, a torch.save zip) would create `marker`."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    zipped = folder / "zipped.pt"
    torch.save({"weight": _Payload(marker)}, zipped)
    if marker.exists():  # torch.save must not have run it; be sure the bait starts absent
        marker.unlink()
    return {"raw pickle": raw, "torch zip": zipped}


def _adapter_config(base: str) -> dict:
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
            "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": base, "bias": "none"}


def run_model_file_faults(root: Path, embedder_dir: str, generator_dir: str) -> dict[str, Any]:
    """load_embedder / load_generator (with and without a LoRA adapter) on corrupt or malicious files.

    Every case must be a ModelError (or IntegrityError) and no payload may run; the tiny models come
    from the caller (tests/conftest.py builds them).
    """
    from rag_jobs.models import load_embedder, load_generator

    box = Sandbox(root, "sandbox-models")
    d = box.dir
    tally = Tally()
    evil = malicious_pickles(box.marker, d / "evil")

    def copy(src: str, name: str, damage: Callable[[Path], None]) -> str:
        folder = d / name
        shutil.copytree(src, folder)
        damage(folder)
        return str(folder)

    def replace_weights(weights: str, by: Path | bytes) -> Callable[[Path], None]:
        def damage(folder: Path) -> None:
            (folder / "model.safetensors").unlink()
            target = folder / weights
            if isinstance(by, Path):
                shutil.copyfile(by, target)
            else:
                target.write_bytes(by)

        return damage

    def adapter(name: str, files: dict[str, bytes | Path]) -> str:
        folder = d / name
        folder.mkdir()
        for fname, content in files.items():
            if isinstance(content, Path):
                shutil.copyfile(content, folder / fname)
            else:
                (folder / fname).write_bytes(content)
        return str(folder)

    cfg = json.dumps(_adapter_config(generator_dir)).encode()
    gen = lambda path, **kw: (lambda: load_generator(path, device="cpu", quantization="none", **kw))  # noqa: E731
    cases: list[tuple[str, Callable[[], Any], str]] = [
        ("embedder: safetensors header flipped",
         lambda: load_embedder(copy(embedder_dir, "e1", lambda f: _flip(f / "model.safetensors", offset=12))),
         "reject"),
        ("embedder: safetensors truncated",
         lambda: load_embedder(copy(embedder_dir, "e2", lambda f: _truncate(f / "model.safetensors", 0.3))), "reject"),
        ("embedder: safetensors is a pickle",
         lambda: load_embedder(copy(embedder_dir, "e3", lambda f: shutil.copyfile(evil["raw pickle"],
                                                                                   f / "model.safetensors"))),
         "reject"),
        ("generator: safetensors header flipped",
         gen(copy(generator_dir, "g1", lambda f: _flip(f / "model.safetensors", offset=12))), "reject"),
        ("generator: safetensors truncated",
         gen(copy(generator_dir, "g2", lambda f: _truncate(f / "model.safetensors", 0.3))), "reject"),
        ("generator: empty safetensors", gen(copy(generator_dir, "g3", lambda f: (f / "model.safetensors")
                                                   .write_bytes(b""))), "reject"),
        ("adapter: corrupt adapter_model.safetensors",
         gen(generator_dir, adapter_dir=adapter("a1", {"adapter_config.json": cfg,
                                                       "adapter_model.safetensors": os.urandom(512)})), "reject"),
        ("adapter: truncated adapter_model.safetensors",
         gen(generator_dir, adapter_dir=adapter("a2", {"adapter_config.json": cfg,
                                                       "adapter_model.safetensors": b"\x10\x00\x00\x00\x00\x00"
                                                                                    b"\x00\x00{\"a\":"})),
         "reject"),
        ("adapter: no adapter_config.json", gen(generator_dir, adapter_dir=adapter("a3", {})), "reject"),
        ("adapter: adapter_config.json not JSON",
         gen(generator_dir, adapter_dir=adapter("a4", {"adapter_config.json": b"{bad"})), "reject"),
    ]
    for label, payload in evil.items():
        tag = label.replace(" ", "-")
        cases += [
            (f"embedder: pytorch_model.bin only, a {label}",
             lambda p=payload, t=tag: load_embedder(copy(embedder_dir, f"pe-{t}",
                                                         replace_weights("pytorch_model.bin", p))),
             "reject"),
            (f"generator: pytorch_model.bin only, a {label}",
             gen(copy(generator_dir, f"pg-{tag}", replace_weights("pytorch_model.bin", payload))), "reject"),
            (f"adapter: adapter_model.bin only, a {label}",
             gen(generator_dir, adapter_dir=adapter(f"pa-{tag}", {"adapter_config.json": cfg,
                                                                  "adapter_model.bin": payload})), "reject"),
        ]
    _run_cases(box, tally, cases)
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 5. checkpoints: resuming `train()` from a damaged checkpoint
# --------------------------------------------------------------------------------------------------


def _tiny_training():
    """A one-parameter training problem and a valid checkpoint folder writer."""
    import torch

    from rag_jobs.training.loop import LoopConfig, ParamGroup

    w = torch.nn.Parameter(torch.zeros(3))

    def kwargs() -> dict[str, Any]:
        return dict(label="fault", items=list(range(4)), step_fn=lambda xs: ((w - 1.0) ** 2).sum() * len(xs),
                    groups=[ParamGroup("tiny", [w], 0.1)], cfg=LoopConfig(batch_size=2, log_every=100),
                    trainable_state=lambda: {"w": w.detach()}, load_trainable=lambda sd: w.data.copy_(sd["w"]))

    def write_checkpoint(folder: Path) -> None:
        from rag_jobs.training.loop import _save_checkpoint

        opt = torch.optim.AdamW([{"params": [w], "lr": 0.1, "name": "tiny"}])
        ((w - 1.0) ** 2).sum().backward()
        opt.step()
        w.grad = None
        _save_checkpoint(folder, step=1, groups=[ParamGroup("tiny", [w], 0.1)], opt=opt, trainable={"w": w.detach()})

    return kwargs, write_checkpoint


class _StoreCheckpoints:
    """The CheckpointIO of the fine-tuning jobs, minus the StepContext: latest() fetches (verified)."""

    def __init__(self, store: Any, ref: Any) -> None:
        self.store, self.ref = store, ref

    def save(self, n: int, folder: Path) -> None:
        from rag_jobs.artifacts import commit_checkpoint

        commit_checkpoint(self.store, self.ref, n, folder)

    def latest(self, dest: Path) -> int | None:
        from rag_jobs.artifacts import fetch_checkpoint, latest_checkpoint

        found = latest_checkpoint(self.store, self.ref)
        if found is None:
            return None
        fetch_checkpoint(self.store, self.ref, found[0], dest)
        return found[0]


class _FolderCheckpoint:
    """A CheckpointIO whose latest() hands over a folder as it is (what resuming reads after the fetch)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, n: int, folder: Path) -> None:
        pass

    def latest(self, dest: Path) -> int | None:
        shutil.copytree(self.folder, dest)
        return 1


def run_checkpoint_store_faults(root: Path) -> dict[str, Any]:
    """`train()` resuming through the store: a tampered checkpoint file, a corrupt checkpoint manifest
    (both must be IntegrityError), and a checkpoint carrying an extra malicious .pt (resumes; never loaded)."""
    from rag_jobs.artifacts import LocalStore, StepRef, commit_checkpoint
    from rag_jobs.training.loop import train

    box = Sandbox(root, "sandbox-ckpt-store")
    d = box.dir
    tally = Tally()
    kwargs, write_checkpoint = _tiny_training()
    evil = malicious_pickles(box.marker, d / "evil")

    def store_with(name: str, damage: Callable[[LocalStore, StepRef], None], extra: dict[str, Path] | None = None):
        folder = d / f"{name}-ckpt"
        write_checkpoint(folder)
        for fname, src in (extra or {}).items():
            shutil.copyfile(src, folder / fname)
        store = LocalStore(d / f"{name}-store")
        ref = StepRef("run-faults", "finetune-gen.lr-1e-03")
        commit_checkpoint(store, ref, 1, folder)
        damage(store, ref)
        work = d / f"{name}-work"
        work.mkdir()
        return lambda: train(**kwargs(), checkpoints=_StoreCheckpoints(store, ref), work_dir=work)

    def tamper(fname: str, how: Callable[[Path], None]) -> Callable[[Any, Any], None]:
        def damage(store: Any, ref: Any) -> None:
            (key,) = [k for k in store.list(ref.checkpoints_prefix) if k.endswith("/" + fname)]
            how(store.root / key)

        return damage

    def corrupt_manifest(store: Any, ref: Any) -> None:
        store.put_bytes(ref.checkpoint(1).manifest_key, b'{"format": 1, "run_id": ')

    def no_damage(store: Any, ref: Any) -> None:
        pass

    cases = [
        ("store: trainable.safetensors truncated", store_with("t1", tamper("trainable.safetensors", _truncate)),
         "reject"),
        ("store: optimizer.safetensors bit flip", store_with("t2", tamper("optimizer.safetensors", _flip)), "reject"),
        ("store: rng.safetensors replaced by a pickle",
         store_with("t3", tamper("rng.safetensors", lambda p: shutil.copyfile(evil["raw pickle"], p))), "reject"),
        ("store: state.json emptied", store_with("t4", tamper("state.json", lambda p: p.write_text(""))), "reject"),
        ("store: checkpoint manifest corrupt", store_with("t5", corrupt_manifest), "reject"),
        ("store: checkpoint with an extra malicious checkpoint.pt (ignored)",
         store_with("t6", no_damage, {"checkpoint.pt": evil["torch zip"], "optimizer.pt": evil["raw pickle"]}),
         "accept"),
    ]
    _run_cases(box, tally, cases)
    return tally.as_dict()


def run_checkpoint_folder_faults(root: Path) -> dict[str, Any]:
    """`train()` resuming from a checkpoint folder whose files are damaged after the fetch (or were committed
    damaged: the manifest only proves the bytes are the ones uploaded). A corrupt checkpoint cannot be
    fixed by a retry, so it must be an IntegrityError (exit 2), not a SafetensorError / KeyError (exit 1)."""
    import safetensors.torch
    import torch

    from rag_jobs.training.loop import train

    box = Sandbox(root, "sandbox-ckpt-folder")
    d = box.dir
    tally = Tally()
    kwargs, write_checkpoint = _tiny_training()
    evil = malicious_pickles(box.marker, d / "evil")

    def folder_with(name: str, damage: Callable[[Path], None]):
        folder = d / name
        write_checkpoint(folder)
        damage(folder)
        work = d / f"{name}-work"
        work.mkdir()
        return lambda: train(**kwargs(), checkpoints=_FolderCheckpoint(folder), work_dir=work)

    cases = [
        ("folder: trainable.safetensors truncated", folder_with("f1", lambda f: _truncate(f / "trainable.safetensors")),
         "reject"),
        ("folder: optimizer.safetensors garbage",
         folder_with("f2", lambda f: (f / "optimizer.safetensors").write_bytes(os.urandom(64))), "reject"),
        ("folder: rng.safetensors is a malicious pickle",
         folder_with("f3", lambda f: shutil.copyfile(evil["raw pickle"], f / "rng.safetensors")), "reject"),
        ("folder: state.json not JSON", folder_with("f4", lambda f: (f / "state.json").write_text("{")), "reject"),
        ("folder: state.json without the RNG states", folder_with("f5", lambda f: (f / "state.json").write_text("{}")),
         "reject"),
        ("folder: trainable tensors of another model",
         folder_with("f6", lambda f: safetensors.torch.save_file({"other": torch.zeros(2)},
                                                                 str(f / "trainable.safetensors"))), "reject"),
    ]
    _run_cases(box, tally, cases)
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 6. config values: parse_config and the settings -> graph path the CLI takes
# --------------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


def run_config_faults(root: Path) -> dict[str, Any]:
    """parse_config on each step config, and (settings, strategy) through RunSettings + build_graph."""
    from rag_jobs.config import (
        BuildIndexConfig,
        DataConfig,
        EvaluateConfig,
        FinetuneEmbedConfig,
        FinetuneGenConfig,
        JointConfig,
        ScorePoolConfig,
        SelectConfig,
        parse_config,
        step_config,
    )
    from rag_jobs.strategies.catalog import RunSettings, build_graph

    box = Sandbox(root, "sandbox-config")
    tally = Tally()
    ok_lr = {"lr": 1e-4}
    bad: list[tuple[str, type, dict]] = [
        ("lr = 0", FinetuneGenConfig, {"lr": 0}),
        ("lr < 0", FinetuneEmbedConfig, {"lr": -1e-5}),
        ("lr = NaN", FinetuneGenConfig, {"lr": NAN}),
        ("lr = inf", FinetuneEmbedConfig, {"lr": INF}),
        ("lr = 'fast'", FinetuneGenConfig, {"lr": "fast"}),
        ("lr missing", FinetuneGenConfig, {}),
        ("joint embed_lr = NaN", JointConfig, {"embed_lr": NAN, "gen_lr": 1e-4}),
        ("joint gen_lr = NaN", JointConfig, {"embed_lr": 1e-4, "gen_lr": NAN}),
        ("joint gen_lr = 0", JointConfig, {"embed_lr": 1e-4, "gen_lr": 0}),
        ("joint embedder lr missing", JointConfig, {"train": "embedder", "gen_lr": 1e-4}),
        ("score pool smaller than k", ScorePoolConfig, {"pool": 3, "k": 5}),
        ("train k = 0", FinetuneGenConfig, {**ok_lr, "k": 0}),
        ("evaluate k = 0", EvaluateConfig, {"k": 0}),
        ("evaluate k = -1", EvaluateConfig, {"k": -1}),
        ("evaluate recall_k = 0", EvaluateConfig, {"recall_k": 0}),
        ("batch size -1", FinetuneGenConfig, {**ok_lr, "batch_size": -1}),
        ("batch size 0", FinetuneEmbedConfig, {**ok_lr, "batch_size": 0}),
        ("batch size 2.5", FinetuneGenConfig, {**ok_lr, "batch_size": 2.5}),
        ("index batch size -1", BuildIndexConfig, {"batch_size": -1}),
        ("evaluate batch size -1", EvaluateConfig, {"batch_size": -1}),
        ("grad_accum 0", FinetuneGenConfig, {**ok_lr, "grad_accum": 0}),
        ("warmup_ratio NaN", FinetuneGenConfig, {**ok_lr, "warmup_ratio": NAN}),
        ("warmup_ratio 1", FinetuneGenConfig, {**ok_lr, "warmup_ratio": 1.0}),
        ("max_grad_norm NaN", FinetuneGenConfig, {**ok_lr, "max_grad_norm": NAN}),
        ("tau 0", JointConfig, {"embed_lr": 1e-4, "gen_lr": 1e-4, "tau": 0}),
        ("tau NaN", JointConfig, {"embed_lr": 1e-4, "gen_lr": 1e-4, "tau": NAN}),
        ("MNRL scale NaN", FinetuneEmbedConfig, {**ok_lr, "scale": NAN}),
        ("lora_dropout NaN", FinetuneGenConfig, {**ok_lr, "lora_dropout": NAN}),
        ("unknown field", FinetuneGenConfig, {**ok_lr, "learning_rate": 1e-4}),
        ("data limit 0", DataConfig, {"limit": 0}),
        ("data split NaN", DataConfig, {"split": [NAN, 0.5, 0.5]}),
        ("data split sums to 2", DataConfig, {"split": [1.0, 0.5, 0.5]}),
        ("data split negative", DataConfig, {"split": [1.2, -0.1, -0.1]}),
        ("select_by bogus", SelectConfig, {"select_by": "bleu"}),
        ("shard out of range", BuildIndexConfig, {"shards": 2, "shard": 2}),
        ("search_params injection", BuildIndexConfig, {"search_params": "nprobe=1;rm -rf /"}),
        ("retriever URL scheme", RunSettings, {"retriever": "file:///etc/passwd"}),
        ("index vectors dtype", RunSettings, {"index_vectors": "int8"}),
        ("quantization int3", EvaluateConfig, {"quantization": "int3"}),
        ("config not a dict", FinetuneGenConfig, ["lr", 1e-4]),  # type: ignore[list-item]
        ("settings lr grid [0]", RunSettings, {"embed_lr_grid": [0]}),
        ("settings lr grid [NaN]", RunSettings, {"gen_lr_grid": [NAN]}),
        ("settings lr grid []", RunSettings, {"gen_lr_grid": []}),
        ("settings lr grid [-1e-5]", RunSettings, {"embed_lr_grid": [1e-5, -1e-5]}),
        ("settings gen_lr NaN", RunSettings, {"gen_lr": NAN}),
        ("settings embed_lr 0", RunSettings, {"embed_lr": 0}),
        ("settings index_shards 0", RunSettings, {"index_shards": 0}),
        ("settings train not a mapping", RunSettings, {"train": "fast"}),
        ("settings unknown key", RunSettings, {"strategy_name": "baseline"}),
        ("settings quantization", RunSettings, {"quantization": "fp4"}),
        ("settings select_by", RunSettings, {"select_by": "loss"}),
        ("settings gpus -1", RunSettings, {"gpus": -1}),
    ]
    cases: list[tuple[str, Callable[[], Any], str]] = [
        (f"parse_config {model.__name__}: {label}", lambda m=model, v=data: parse_config(m, v), "reject")
        for label, model, data in bad
    ]
    cases.append(("step_config: unknown step kind", lambda: step_config("train-everything", {}), "reject"))
    graph_cases: list[tuple[str, str, dict]] = [
        ("unknown strategy", "rag-everything", {}),
        ("evaluate k = 0", "baseline", {"evaluate": {"k": 0}}),
        ("evaluate unknown field", "baseline", {"evaluate": {"top_k": 5}}),
        ("train batch size -1", "ft-gen", {"train": {"batch_size": -1}, "gen_lr_grid": [1e-4]}),
        ("train k = 0", "ft-embed", {"train": {"k": 0}, "embed_lr_grid": [1e-4]}),
        ("train lr grid inf", "ft-gen", {"gen_lr_grid": [INF]}),
        ("train tau NaN", "rag-token", {"train": {"tau": NAN}, "embed_lr": 1e-4, "gen_lr": 1e-4}),
        ("rag-token without learning rates", "rag-token", {}),
        ("phase2 pool < k", "two-phase", {"phase2_pool": 2, "train": {"k": 5}}),
        ("dataset spec not a string", "baseline", {"data": {"dataset": 42}}),
    ]
    for label, strategy, data in graph_cases:
        cases.append((f"settings+graph {strategy}: {label}",
                      lambda s=strategy, v=data: build_graph(s, parse_config(RunSettings, v)), "reject"))
    cases.append(("settings+graph ft-gen: valid (one lr)",
                  lambda: build_graph("ft-gen", parse_config(RunSettings, {"gen_lr_grid": [1e-4]})), "accept"))
    _run_cases(box, tally, cases)
    return tally.as_dict()


def run_unused_override_faults(root: Path) -> dict[str, Any]:
    """Invalid run settings that the chosen strategy happens not to use: `rag-jobs run baseline
    --batch-size -1` is still bad config (exit 2), not a run that silently ignores it. In process
    (RunSettings + build_graph, what `rag-jobs run` does before it writes anything) and through the CLI
    (with a guard store: a regular file, so a run that gets past validation stops at the store)."""
    from rag_jobs.config import parse_config
    from rag_jobs.strategies.catalog import RunSettings, build_graph

    box = Sandbox(root, "sandbox-unused")
    tally = Tally()
    cases: list[tuple[str, Callable[[], Any], str]] = []
    for label, strategy, data in [
        ("train batch size -1", "baseline", {"train": {"batch_size": -1}}),
        ("train k = 0", "baseline", {"train": {"k": 0}}),
        ("lr grid [inf]", "baseline", {"gen_lr_grid": [INF], "embed_lr_grid": [INF]}),
        ("embed_lr inf", "baseline", {"embed_lr": INF}),
        ("evaluate k = 0", "index", {"evaluate": {"k": 0}}),
    ]:
        cases.append((f"settings+graph {strategy}: {label}",
                      lambda s=strategy, v=data: build_graph(s, parse_config(RunSettings, v)), "reject"))
    _run_cases(box, tally, cases)
    guard = box.dir / "guard-store"
    guard.write_text("a file, not a store folder\n")
    run_cli_cases(box, [
        CliCase("cli run baseline --batch-size -1", ["rag_jobs.cli", "run", "baseline", "--store", str(guard),
                                                    "--batch-size", "-1"], ("--batch-size -1",)),
        CliCase("cli run baseline --lr-grid inf", ["rag_jobs.cli", "run", "baseline", "--store", str(guard),
                                                  "--lr-grid", "inf"], ("--lr-grid inf",)),
    ], tally)
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 7. the CLI: invalid values end in exit 2 and one line
# --------------------------------------------------------------------------------------------------


def run_cli_faults(root: Path) -> dict[str, Any]:
    """`python -m rag_jobs.cli run ...` with bad flags and config files.

    The store is a guard (a regular file): a run that gets past validation stops there with a StoreError,
    which is then a `wrong_rejection` (the error must name the bad value), never a real run.
    """
    box = Sandbox(root, "sandbox-cli")
    d = box.dir
    tally = Tally()
    guard = d / "guard-store"
    guard.write_text("a file, not a store folder\n")
    yaml_files = {
        "k0.yaml": "evaluate:\n  k: 0\n",
        "train-k0.yaml": "gen_lr_grid: [0.001]\ntrain:\n  k: 0\n",
        "evil.yaml": f'!!python/object/apply:os.system ["touch {box.marker}"]\n',
    }
    for name, text in yaml_files.items():
        (d / name).write_text(text)

    def run(*args: str) -> list[str]:
        return ["rag_jobs.cli", "run", *args, "--store", str(guard)]

    cases = [
        CliCase("run baseline --lr-grid 0", run("baseline", "--lr-grid", "0"), ("--lr-grid 0",)),
        CliCase("run baseline --lr-grid nan", run("baseline", "--lr-grid", "nan"), ("--lr-grid nan",)),
        CliCase("run baseline --lr-grid fast", run("baseline", "--lr-grid", "fast"), ("--lr-grid", "fast")),
        CliCase("run ft-gen --batch-size -1", run("ft-gen", "--lr-grid", "1e-4", "--batch-size", "-1"),
                ("--batch-size -1", "> 0")),
        CliCase("run rag-everything (unknown strategy)", run("rag-everything"), ("unknown strategy",)),
        CliCase("run baseline --dataset bogus:spec", run("baseline", "--dataset", "bogus:spec"), ("dataset spec",)),
        CliCase("run baseline --config k0.yaml (evaluate k = 0)", run("baseline", "--config", str(d / "k0.yaml")),
                ("evaluate.k = 0", "k0.yaml")),
        CliCase("run ft-gen --config train-k0.yaml (train k = 0)", run("ft-gen", "--config", str(d / "train-k0.yaml")),
                ("train.k = 0", "train-k0.yaml")),
        CliCase("run baseline --config evil.yaml (a python/object tag)",
                run("baseline", "--config", str(d / "evil.yaml")), ("YAML",)),
        # Click's own usage errors (unknown flag, missing argument, a flag's type) are one line too
        CliCase("run baseline --bogus (unknown flag)", run("baseline", "--bogus"), ("--bogus", "--help")),
        CliCase("run (no strategy)", ["rag_jobs.cli", "run"], ("strategy", "--help")),
        CliCase("run baseline --seed abc", run("baseline", "--seed", "abc"), ("--seed",)),
    ]
    run_cli_cases(box, cases, tally)
    return tally.as_dict()


def run_cli_config_file_faults(root: Path) -> dict[str, Any]:
    """`rag-jobs run --config FILE` (and `submit --cluster-config FILE`) where FILE cannot be read as text:
    not UTF-8, or a folder."""
    box = Sandbox(root, "sandbox-cli-config")
    d = box.dir
    tally = Tally()
    guard = d / "guard-store"
    guard.write_text("a file, not a store folder\n")
    (d / "latin1.yaml").write_bytes("data:\n  dataset: d\xe9mo\n".encode("latin-1"))
    (d / "folder.yaml").mkdir()
    cases = [
        CliCase("run baseline --config latin1.yaml (not UTF-8)",
                ["rag_jobs.cli", "run", "baseline", "--config", str(d / "latin1.yaml"), "--store", str(guard)],
                ("latin1.yaml",)),
        CliCase("run baseline --config folder.yaml (a folder)",
                ["rag_jobs.cli", "run", "baseline", "--config", str(d / "folder.yaml"), "--store", str(guard)],
                ("folder.yaml",)),
        CliCase("submit baseline --dry-run --cluster-config latin1.yaml (not UTF-8)",
                ["rag_jobs.cli", "submit", "baseline", "--store", "s3://rag-jobs-faults/p", "--dry-run",
                 "--cluster-config", str(d / "latin1.yaml")], ("latin1.yaml",)),
    ]
    run_cli_cases(box, cases, tally)
    return tally.as_dict()


# --------------------------------------------------------------------------------------------------
# 8. S3 credentials: missing, wrong, unreachable endpoint
# --------------------------------------------------------------------------------------------------


class _S3Stub:
    """An S3 endpoint on 127.0.0.1 that refuses every request as S3 does for bad keys (403)."""

    def __init__(self, code: str, message: str) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>stub</RequestId></Error>").encode()

        class Deny(BaseHTTPRequestHandler):
            def _deny(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(403)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _deny

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _S3Stub:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """os.environ replaced by `values` for the AWS_* variables (others untouched), then restored."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k == "BOTO_CONFIG"}
    for k in saved:
        del os.environ[k]
    os.environ.update({k: v for k, v in values.items() if k.startswith("AWS_") or k == "BOTO_CONFIG"})
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith("AWS_") or k == "BOTO_CONFIG"]:
            del os.environ[k]
        os.environ.update(saved)


def run_s3_credential_faults(root: Path) -> dict[str, Any]:
    """An s3:// store with wrong keys (a 403 endpoint), no keys, partial keys, an unreachable endpoint:
    StoreError in process, exit 2 and one line through `rag-jobs run`."""
    from rag_jobs.artifacts import open_store

    box = Sandbox(root, "sandbox-s3")
    tally = Tally()
    bad_keys = {"AWS_ACCESS_KEY_ID": "rag-jobs-test-not-a-key", "AWS_SECRET_ACCESS_KEY": "rag-jobs-test-not-a-secret"}
    with _S3Stub("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.") as bad_id, \
            _S3Stub("SignatureDoesNotMatch", "The request signature we calculated does not match.") as bad_sig:
        unreachable = f"http://127.0.0.1:{_closed_port()}"
        setups: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
            ("wrong access key id", {**bad_keys, "AWS_ENDPOINT_URL": bad_id.url}, ("access key",)),
            ("wrong secret key", {**bad_keys, "AWS_ENDPOINT_URL": bad_sig.url}, ("secret key",)),
            ("no credentials at all", {"AWS_ENDPOINT_URL": bad_id.url}, ("credentials",)),
            ("only an access key id", {"AWS_ACCESS_KEY_ID": "rag-jobs-test-not-a-key",
                                       "AWS_ENDPOINT_URL": bad_id.url}, ("credentials",)),
            ("unreachable endpoint", {**bad_keys, "AWS_ENDPOINT_URL": unreachable}, ("connect",)),
        ]
        cases: list[tuple] = []
        for label, env, fragments in setups:
            full = box.env(**env)

            def in_env(fn: Callable[[Any], Any], e: dict[str, str] = full) -> Callable[[], Any]:
                def go() -> Any:
                    with _environ(e):
                        return fn(open_store("s3://rag-jobs-faults/prefix"))

                return go

            cases += [
                (f"s3 {label}: put_bytes_if_absent",
                 in_env(lambda s: s.put_bytes_if_absent("runs/r/graph.json", b"{}")),
                 "reject", ("StoreError", *fragments)),
                (f"s3 {label}: get_bytes", in_env(lambda s: s.get_bytes("runs/r/graph.json")), "reject",
                 ("StoreError", *fragments)),
                (f"s3 {label}: list", in_env(lambda s: s.list("runs/")), "reject", ("StoreError", *fragments)),
            ]
        cases.append(("s3 AWS_MAX_ATTEMPTS=many",
                      lambda: _with_env(box.env(**bad_keys, AWS_MAX_ATTEMPTS="many"),
                                        lambda: open_store("s3://rag-jobs-faults")), "reject"))
        for uri in ("s3://", "s3:///prefix", "s3://bucket/../outside", "s3://bucket/a//b", "s3://b?versionId=1",
                    "ftp://bucket/x", "file://remote-host/x", ""):
            cases.append((f"open_store({uri!r})", lambda u=uri: _with_env(box.env(**bad_keys), lambda: open_store(u)),
                          "reject"))
        _run_cases(box, tally, cases)

        cli_cases = [
            CliCase(f"cli run baseline --store s3://... ({label})",
                    ["rag_jobs.cli", "run", "baseline", "--store", "s3://rag-jobs-faults/prefix"], fragments,
                    env=box.env(**env))
            for label, env, fragments in setups if label not in ("only an access key id", "wrong secret key")
        ]
        run_cli_cases(box, cli_cases, tally, workers=2)
    return tally.as_dict()


def _with_env(env: dict[str, str], fn: Callable[[], Any]) -> Any:
    with _environ(env):
        return fn()


# --------------------------------------------------------------------------------------------------
# 9. names, keys and paths: '../' and absolute paths never leave the store or the run folder
# --------------------------------------------------------------------------------------------------


def run_path_faults(root: Path) -> dict[str, Any]:
    """Layout names, store keys, manifests, run URIs, the CLI's --run-id and an entrypoint's --run/--step:
    every traversal is a clean rejection and nothing outside the sandbox is written, read or removed."""
    from rag_jobs.artifacts import (
        LocalStore,
        RunRef,
        StepRef,
        commit_dir,
        fetch_step,
        open_store,
        parse_run_uri,
        read_manifest,
    )
    from rag_jobs.artifacts.layout import CheckpointRef, new_attempt_id, validate_name
    from rag_jobs.artifacts.manifest import FileEntry
    from rag_jobs.runners.local import publish_graph
    from rag_jobs.strategies.catalog import RunSettings, build_graph
    from rag_jobs.strategies.graph import Graph, StepSpec

    box = Sandbox(root, "sandbox-paths")
    d = box.dir
    tally = Tally()
    out = box.outside
    store = LocalStore(d / "store")
    src = d / "payload.txt"
    src.write_text("payload\n")
    attempt = new_attempt_id()
    step = StepRef("run-a", "build-index")
    cases: list[tuple[str, Callable[[], Any], str]] = []

    names = ["..", "../x", "../../outside", "/abs", str(out), "a/b", "a\\b", "", ".", ".hidden", "A", "x" * 64,
             "a\x00b", "a\nb", "run id", None, 5]
    for name in names:
        cases.append((f"validate_name({name!r})", lambda n=name: validate_name(n, field="step name"), "reject"))
        cases.append((f"RunRef({name!r})", lambda n=name: RunRef(n), "reject"))
        cases.append((f"StepRef('run-a', {name!r})", lambda n=name: StepRef("run-a", n), "reject"))
    cases += [
        ("StepRef: reserved step graph.json", lambda: StepRef("run-a", "graph.json"), "reject"),
        ("CheckpointRef n = -1", lambda: CheckpointRef(step, -1), "reject"),
        ("CheckpointRef n = True", lambda: CheckpointRef(step, True), "reject"),
        ("CheckpointRef n = 10**8", lambda: CheckpointRef(step, 10**8), "reject"),
        ("attempt_prefix('../..')", lambda: step.attempt_prefix("../.."), "reject"),
    ]
    for rel in ["../../outside/x", "a/../../x", "/etc/passwd", str(out / "x"), "a//b", "a/./b", "a\\..\\b",
                ".tmp-x/y", "a/.tmp-y", "", "a\x00", "a/"]:
        cases.append((f"file_key(attempt, {rel!r})", lambda r=rel: step.file_key(attempt, r), "reject"))

    victim_rel = "../../outside/victim.txt"  # relative to d/store
    for label, fn in [
        ("put_bytes ../", lambda: store.put_bytes("../../outside/escaped.txt", b"x")),
        ("put_bytes deep ../", lambda: store.put_bytes("runs/r/s/../../../../../outside/escaped.txt", b"x")),
        ("put_bytes absolute", lambda: store.put_bytes(str(out / "escaped.txt"), b"x")),
        ("put_bytes backslashes", lambda: store.put_bytes("..\\..\\outside\\escaped.txt", b"x")),
        ("put_bytes NUL", lambda: store.put_bytes("runs/r\x00/../x", b"x")),
        ("put_bytes_if_absent ../", lambda: store.put_bytes_if_absent("../../outside/escaped.txt", b"x")),
        ("put_file ../", lambda: store.put_file("../../outside/escaped.txt", src)),
        ("get_bytes ../ (reads outside)", lambda: store.get_bytes(victim_rel)),
        ("get_bytes absolute", lambda: store.get_bytes(str(box.victim))),
        ("get_file ../", lambda: store.get_file(victim_rel, d / "downloaded.txt")),
        ("exists ../", lambda: store.exists(victim_rel)),
        ("list ../", lambda: store.list("../")),
        ("list absolute", lambda: store.list(str(out))),
        ("delete ../", lambda: store.delete(victim_rel)),
        ("delete absolute", lambda: store.delete(str(box.victim))),
        ("delete_prefix ../", lambda: store.delete_prefix("../../outside")),
        ("delete_prefix /", lambda: store.delete_prefix("/")),
        ("delete_prefix '' (the whole store)", lambda: store.delete_prefix("")),
    ]:
        cases.append((f"LocalStore.{label}", fn, "reject"))
    for uri in ["file:///x/runs/..", "file:///x/runs/../../outside", f"file://{d}/store/runs/a/../../outside",
                "runs/../x", "s3://b/runs/../x", "runs/", "s3://runs/x", 7]:
        cases.append((f"parse_run_uri({uri!r})", lambda u=uri: parse_run_uri(u), "reject"))
    for uri in ["file://evil-host/x", f"file://{d}/store?x=1", "gopher://x"]:
        cases.append((f"open_store({uri!r})", lambda u=uri: open_store(u), "reject"))

    # a committed step, then manifests tampered to point outside
    (d / "step-out").mkdir()
    (d / "step-out" / "a.txt").write_text("a\n")
    commit_dir(store, step, d / "step-out")
    good = read_manifest(store, step)
    entry = good.files["a.txt"]

    def tampered(files: dict[str, FileEntry]) -> Callable[[], Any]:
        def go() -> Any:
            store.put_bytes(step.manifest_key, good.model_copy(update={"files": files}).to_json())
            try:
                return fetch_step(store, step, d / "fetched" / "sub")
            finally:
                store.put_bytes(step.manifest_key, good.to_json())

        return go

    cases += [
        ("manifest relpath ../../../outside/evil.txt", tampered({"../../../outside/evil.txt": entry}), "reject"),
        ("manifest relpath absolute", tampered({str(out / "evil.txt"): entry}), "reject"),
        ("manifest relpath with backslashes", tampered({"..\\..\\..\\outside\\evil.txt": entry}), "reject"),
        ("manifest key reads outside the store",
         tampered({"a.txt": FileEntry(sha256=entry.sha256, size=entry.size, key=victim_rel)}), "reject"),
        ("manifest key absolute",
         tampered({"a.txt": FileEntry(sha256=entry.sha256, size=entry.size, key=str(box.victim))}), "reject"),
    ]
    _run_cases(box, tally, cases)

    # a published graph with a step named '../../evil' (a tampered graph.json), for an entrypoint
    cli_store = d / "cli-store"
    graph = build_graph("baseline", RunSettings(), "run-paths")
    evil = StepSpec("../../../outside/evil", "select", {"select_by": "em", "role": "x"})
    publish_graph(LocalStore(cli_store), Graph(run_id=graph.run_id, strategy="baseline", steps=[*graph.steps, evil]))
    run_uri = f"file://{cli_store}/runs/{graph.run_id}"
    cli_cases = [
        CliCase("cli run baseline --run-id ../../../outside/evil",
                ["rag_jobs.cli", "run", "baseline", "--store", str(d / "store2"), "--run-id", "../../../outside/evil"],
                ("run id",)),
        CliCase("cli status <store>/runs/../../outside",
                ["rag_jobs.cli", "status", f"file://{cli_store}/runs/../../outside"], ("run id",)),
        CliCase("entrypoint select --run <store>/runs/../../outside",
                ["rag_jobs.jobs.select", "--run", f"file://{cli_store}/runs/../../outside", "--step", "select"],
                ("run id",), prefix="select: error: "),
        CliCase("entrypoint select --step ../../../outside/evil (tampered graph.json)",
                ["rag_jobs.jobs.select", "--run", run_uri, "--step", "../../../outside/evil"], ("step name",),
                prefix="select: error: "),
    ]
    run_cli_cases(box, cli_cases, tally)
    return tally.as_dict()


def run_graph_file_faults(root: Path) -> dict[str, Any]:
    """A corrupt graph.json in the store (`load_graph`, read by every entrypoint and by `rag-jobs status`,
    `report`, `drive`): not an object, not UTF-8, inputs of the wrong type, nested too deeply."""
    from rag_jobs.artifacts import LocalStore, RunRef
    from rag_jobs.jobs.common import load_graph

    box = Sandbox(root, "sandbox-graph")
    d = box.dir
    tally = Tally()
    store = LocalStore(d / "store")
    bodies = {
        "a JSON list": b"[]",
        "a JSON string": b'"graph"',
        "not UTF-8": b"\xff\xfe{}",
        "inputs is a list": json.dumps({"format": 1, "run_id": "r", "strategy": "s", "settings": {},
                                        "steps": [{"name": "a", "kind": "select", "config": {},
                                                   "inputs": ["b"]}]}).encode(),
        "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    }
    cases = []
    for i, (label, body) in enumerate(bodies.items()):
        run = RunRef(f"run-{i}")
        store.put_bytes(run.graph_key, body)
        cases.append((f"load_graph: graph.json is {label}", lambda r=run: load_graph(store, r), "reject"))
    _run_cases(box, tally, cases)
    run_cli_cases(box, [CliCase("cli status (graph.json is a JSON list)",
                                ["rag_jobs.cli", "status", f"file://{d / 'store'}/runs/run-0"], ("graph",))], tally)
    return tally.as_dict()


def run_detector_selftest(root: Path) -> dict[str, Any]:
    """The classifier on cases whose outcome is known: one of each kind (see the test for the figures)."""
    from rag_jobs.errors import ConfigError, DataError, TransientError

    box = Sandbox(root, "sandbox-selftest")
    tally = Tally()

    def escape() -> None:
        (box.outside / "escaped.txt").write_text("x")
        raise DataError("rejected, but only after writing outside")

    def delete_bait() -> None:
        box.victim.unlink()
        raise DataError("rejected, but only after deleting the bait")

    def payload() -> None:
        pickle.loads(pickle.dumps(_Payload(box.marker)))
        raise DataError("rejected, but only after unpickling")

    def multi_line() -> None:
        raise ConfigError("first line\nsecond line")

    def hang() -> None:
        time.sleep(5)

    cases = [
        ("clean rejection", lambda: (_ for _ in ()).throw(ConfigError("bad value x")), "reject", ("value x",)),
        ("rejection for another reason", lambda: (_ for _ in ()).throw(ConfigError("bad value y")), "reject",
         ("value x",)),
        ("untyped crash", lambda: {}["missing"], "reject"),
        ("typed but retryable", lambda: (_ for _ in ()).throw(TransientError("try again")), "reject"),
        ("multi-line message", multi_line, "reject"),
        ("wrong accept", lambda: 42, "reject"),
        ("right accept", lambda: 42, "accept"),
        ("escape", escape, "reject"),
        ("bait deleted", delete_bait, "reject"),
        ("payload ran", payload, "reject"),
    ]
    _run_cases(box, tally, cases)
    _run_cases(box, tally, [("hang", hang, "reject")], timeout=0.5)
    return tally.as_dict()


def summary(result: dict[str, Any]) -> str:
    """A readable multi-line account of a result dict (for assertion messages)."""
    counts = ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("failures", "kinds"))
    lines = [counts, *result["failures"]]
    return "\n  ".join(lines)

