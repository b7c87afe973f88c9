"""Progress lines that read well in a terminal and in `kubectl logs` (one line each, no carriage returns)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


class Progress:
    """Prints `[label] what done/total (pct) rate unit/s ETA` at most every `every_s` seconds, and at the end."""

    def __init__(self, label: str, what: str, total: int, *, unit: str = "it", every_s: float = 5.0,
                 stream: TextIO | None = None):
        self.label, self.what, self.total, self.unit = label, what, max(total, 0), unit
        self.every_s = every_s
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self._last = -1e9

    def __call__(self, done: int, total: int | None = None) -> None:
        """Callback form `(done, total)` for loops that report their own total."""
        if total is not None:
            self.total = total
        self.update(done)

    def update(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        if done < self.total and now - self._last < self.every_s:
            return
        self._last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        pct = 100.0 * done / self.total if self.total else 100.0
        tail = f" {extra}" if extra else ""
        print(
            f"[{self.label}] {self.what} {done}/{self.total} ({pct:.1f}%) {rate:.1f} {self.unit}/s "
            f"elapsed {fmt_duration(elapsed)} ETA {fmt_duration(eta)}{tail}",
            file=self.stream,
            flush=True,
        )


def log(label: str, message: str) -> None:
    print(f"[{label}] {message}", flush=True)
