"""Small text and geometry helpers: names in running text, folding, numbers, lists, coordinates."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

_NEEDS_ARTICLE = re.compile(
    r"(\b(States|Kingdom|Emirates|Republic|Islands|Isles|Territory|Territories|Antilles|Bahamas|Gambia"
    r"|Philippines|Maldives|Comoros|Seychelles|Netherlands)$)|^(Republic|Democratic Republic|Holy See)\b"
)

_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty",
)  # fmt: skip


# --- small helpers -----------------------------------------------------------------------------------


def _names(country: str) -> dict[str, str]:
    """A country's name for use inside a sentence (`country`) and at its start (`Country`).

    Names such as "United States" or "Marshall Islands" take the definite article in running text.
    """
    if country.startswith("The "):
        return {"country": "the " + country[4:], "Country": country}
    if _NEEDS_ARTICLE.search(country):
        return {"country": f"the {country}", "Country": f"The {country}"}
    return {"country": country, "Country": country}


def _fold(text: str) -> str:
    """Lower case, accents and punctuation removed: for comparing names."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^0-9a-z]+", "", ascii_text.lower())


def _name_tokens(name: str) -> list[str]:
    """What makes two city names look alike: a shared word of 4+ letters, or the same first 4 letters."""
    words = {t for t in re.findall(r"\w+", name.casefold()) if len(t) >= 4 and not t.isdigit()}
    folded = _fold(name)
    if len(folded) >= 4:
        words.add("^" + folded[:4])
    return sorted(words)


def _latin_text(text: str) -> bool:
    """Letters only from the Latin script (no IPA), plus spaces and punctuation."""
    for ch in text:
        if ch.isascii():
            continue
        if 0x0250 <= ord(ch) <= 0x02FF or "LATIN" not in unicodedata.name(ch, ""):
            return False
    return True


def _approx(n: int) -> str:
    if n >= 1_000_000_000:
        return _trim(f"{n / 1e9:.1f}") + " billion"
    if n >= 1_000_000:
        return _trim(f"{n / 1e6:.1f}") + " million"
    if n >= 10_000:
        return f"{round(n, -3):,}"
    if n >= 1_000:
        return f"{round(n, -2):,}"
    return str(n)


def _trim(number: str) -> str:
    return number[:-2] if number.endswith(".0") else number


def _number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _dedup(items: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return tuple(out)


def _coords(lat: float, lon: float, digits: int = 1) -> dict[str, str]:
    return {
        "lat": f"{abs(lat):.{digits}f}° {'N' if lat >= 0 else 'S'}",
        "lon": f"{abs(lon):.{digits}f}° {'E' if lon >= 0 else 'W'}",
    }


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing (degrees, 0 = north) from the first point to the second."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360
