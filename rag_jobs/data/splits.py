"""Deterministic train/validation/test splits.

An example's place depends only on the seed and its id: examples are ordered by sha256("seed:id") (ties,
which need a hash collision, by id), so the same seed gives the same splits whatever the input order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from rag_jobs.data._common import one_line, shown
from rag_jobs.data.records import Example, Splits
from rag_jobs.errors import ConfigError, DataError

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def split_examples(
    examples: Sequence[Example],
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    limit: int | None = None,
) -> Splits:
    """Split examples into train, validation and test by a seeded permutation of their ids.

    `fractions` are the shares of (train, validation, test): three non-negative numbers summing to 1.
    `limit` keeps only the first `limit` examples of the permutation (a seeded sample) before splitting.
    Split sizes are the fractions of the total rounded by the largest-remainder method, so they add up.
    """
    shares = validate_fractions(fractions)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: must be an integer, got {shown(seed)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit: must be a positive integer or None, got {shown(limit)}")

    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise DataError(one_line(f"duplicate question id {shown(ex.id)}: ids must be unique to split"))
        seen.add(ex.id)

    ordered = sorted(examples, key=lambda ex: (_rank(seed, ex.id), ex.id))
    if limit is not None:
        ordered = ordered[:limit]
    n_train, n_val, _ = split_sizes(len(ordered), shares)
    return Splits(
        train=ordered[:n_train],
        validation=ordered[n_train : n_train + n_val],
        test=ordered[n_train + n_val :],
    )


def validate_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """The fractions as a checked (train, validation, test) triple, or a ConfigError naming them."""
    try:
        shares = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"fractions: must be three numbers, got {shown(fractions)}") from None
    if len(shares) != 3:
        raise ConfigError(
            f"fractions: must be three numbers (train, validation, test), got {shown(fractions)}"
        )
    if any(not math.isfinite(f) or f < 0 for f in shares):
        raise ConfigError(f"fractions: must be finite and non-negative, got {shown(fractions)}")
    if not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise ConfigError(f"fractions: must sum to 1, got {shown(fractions)} (sum {sum(shares):g})")
    return shares[0], shares[1], shares[2]


def split_sizes(n: int, shares: tuple[float, float, float]) -> tuple[int, int, int]:
    """Sizes for n items by the largest-remainder method (ties go to the earlier split)."""
    exact = [n * s for s in shares]
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(3), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes[0], sizes[1], sizes[2]


def _rank(seed: int, ex_id: str) -> bytes:
    return hashlib.sha256(f"{seed}:{ex_id}".encode()).digest()


def split_with_sources(
    examples: Sequence[Example],
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    limit: int | None = None,
    validation: Sequence[Example] | None = None,
    test: Sequence[Example] | None = None,
) -> tuple[Splits, dict]:
    """Splits where validation and/or test may come from their own files: those splits are those questions (in
    a seeded order), and the seeded split cuts only `examples`, by the fractions of the splits left (renormalised).
    Questions of `examples` that also appear in a given split's file are left out of the cut (counted), so a
    held-out question is never trained on. Returns the splits and what was done (for the manifest)."""
    shares = validate_fractions(fractions)
    given = {"validation": validation, "test": test}
    held = {ex.id for part in given.values() if part is not None for ex in part}
    if validation is not None and test is not None:
        both = {ex.id for ex in validation} & {ex.id for ex in test}
        if both:
            raise DataError(one_line(f"question id {shown(min(both))} is in both the validation and the test "
                                     "dataset"))
    kept = [ex for ex in examples if ex.id not in held]
    left = [0.0 if given.get(name) is not None else f for name, f in zip(("train", "validation", "test"), shares)]
    if sum(left) <= 0:
        raise ConfigError(f"fractions {shown(tuple(fractions))}: no share is left for the splits that come from "
                          "--dataset")
    left = [f / sum(left) for f in left]
    cut = split_examples(kept, seed, left, limit=limit)
    parts = {"train": cut.train, "validation": cut.validation, "test": cut.test}
    for name, part in given.items():
        if part is not None:
            parts[name] = split_examples(part, seed, (0.0, 0.0, 1.0)).test  # all of them, in a seeded order
    return Splits(**parts), {"dropped_held_out": len(examples) - len(kept), "fractions_used": left}
