"""Passages about cities: which cities get a gazetteer entry, the entries, and each country's city lists."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from rag_jobs.data.demo.constants import (
    _CITIES_PER_LIST,
    _LOOKALIKES_PER_CITY,
    _MAX_NEIGHBOUR_KM,
    _MIN_CITY_POP_FOR_FILL,
    _MIN_CITY_POP_FOR_LANDMARK,
    _MIN_CITY_POP_FOR_QUESTION,
    _MIN_NEIGHBOUR_KM,
    _NAMESAKE_POP_RATIO,
    _NAMESAKE_SHARE,
    _NEIGHBOURS_PER_CITY,
)
from rag_jobs.data.demo.facts import _City, _Country, _Facts
from rag_jobs.data.demo.passages import _chunks, _compose, _Sentence
from rag_jobs.data.demo.templates import _CITY_COORDS, _CITY_LIST, _CITY_NEAR, _CITY_POP, _DIRECTIONS, _ONE_CITY_LIST
from rag_jobs.data.demo.text import _approx, _bearing, _coords, _distance_km, _fold, _join, _name_tokens, _names
from rag_jobs.errors import ConfigError

# --- cities ------------------------------------------------------------------------------------------


class _CityPicker:
    """Chooses the question cities and every city that gets a gazetteer entry.

    Entries go to the question cities; their lookalikes (a shared word or the same first four letters,
    preferably in another country); their namesakes (same name, another country); their neighbours,
    whose entries measure from the question city; the largest city of every country; and a random
    sample. Every other entry measures from the largest landmark (a city of 100,000+ people, not a
    capital) within 100 km, if there is one.
    """

    def __init__(self, facts: _Facts, rng: random.Random) -> None:
        self.rng = rng
        self.capitals = {_fold(c.capital) for c in facts.countries}
        self.country_names = {_fold(c.name) for c in facts.countries}
        capital_of: dict[str, list[str]] = {}
        for c in facts.countries:
            capital_of[c.code] = [_fold(name) for name in (c.capital, *c.capital_aliases) if _fold(name)]
        # Capitals have their own passages. Places named after their country's capital ("South Dublin")
        # are left out too: no other passage about a country names its capital.
        self.pool = [
            city
            for city in facts.cities
            if not any(capital in city.folded for capital in capital_of.get(city.country, ()))
        ]
        self.by_name: dict[str, list[_City]] = {}
        for city in facts.cities:
            self.by_name.setdefault(city.folded, []).append(city)
        self.by_token: dict[str, list[_City]] = {}
        self.by_country: dict[str, list[_City]] = {}
        for city in self.pool:
            self.by_country.setdefault(city.country, []).append(city)
            for token in _name_tokens(city.name):
                self.by_token.setdefault(token, []).append(city)
        self.grid = _grid(self.pool)
        self.landmarks = _grid([c for c in self.pool if c.population >= _MIN_CITY_POP_FOR_LANDMARK])
        self.chosen: dict[int, _City] = {}
        self.refs: dict[int, _City] = {}
        self.question_ids: set[int] = set()

    def pick_questions(self, n: int) -> list[_City]:
        unique: list[_City] = []
        shared: list[_City] = []
        for city in self.pool:
            if (
                city.population < _MIN_CITY_POP_FOR_QUESTION
                or city.folded in self.capitals
                or city.folded in self.country_names
            ):
                continue
            namesakes = self._namesakes(city)
            if namesakes is None:
                continue
            if not namesakes:
                unique.append(city)
            elif all(
                c.population * _NAMESAKE_POP_RATIO <= city.population
                or c.population >= city.population * _NAMESAKE_POP_RATIO
                for c in namesakes
            ):
                shared.append(city)
        n_shared = min(len(shared), round(n * _NAMESAKE_SHARE))
        if n - n_shared > len(unique):
            raise ConfigError(f"n_questions: needs {n} city questions, only {len(unique) + n_shared} cities")
        questions = self.rng.sample(unique, n - n_shared) + self.rng.sample(shared, n_shared)
        self.question_ids = {city.geonameid for city in questions}
        for city in questions:
            self.chosen[city.geonameid] = city
        for city in questions:
            self._add_distractors(city)
        return questions

    def has_namesakes(self, city: _City) -> bool:
        return bool(self._namesakes(city))

    def _namesakes(self, city: _City) -> list[_City] | None:
        """The other cities of the same name; None when one of them is in the same country."""
        others = [c for c in self.by_name[city.folded] if c.geonameid != city.geonameid]
        if any(c.country == city.country for c in others):
            return None
        return others

    def _free(self, city: _City) -> bool:
        return city.geonameid not in self.chosen

    def _add_distractors(self, qc: _City) -> None:
        for city in self._namesakes(qc) or ():  # none is a capital: question cities have no capital's name
            self.chosen.setdefault(city.geonameid, city)
        sharing: dict[int, _City] = {}
        for token in _name_tokens(qc.name):
            for city in self.by_token.get(token, ()):
                if self._free(city) and city.folded != qc.folded:
                    sharing[city.geonameid] = city
        ranked = sorted(sharing.values(), key=lambda c: c.geonameid)
        abroad = [c for c in ranked if c.country != qc.country]
        at_home = [c for c in ranked if c.country == qc.country]
        picks = self.rng.sample(abroad, min(_LOOKALIKES_PER_CITY, len(abroad)))
        picks += self.rng.sample(at_home, min(_LOOKALIKES_PER_CITY - len(picks), len(at_home)))
        for city in picks:
            self.chosen[city.geonameid] = city
        near = [
            (km, city)
            for km, city in _around(self.grid, qc, _MAX_NEIGHBOUR_KM)
            if self._free(city) and city.folded != qc.folded and km >= _MIN_NEIGHBOUR_KM
        ]
        near.sort(key=lambda kc: (kc[0], kc[1].geonameid))
        for _, city in near[:_NEIGHBOURS_PER_CITY]:
            self.chosen[city.geonameid] = city
            self.refs[city.geonameid] = qc

    def fill(self, budget: int, per_list: int) -> None:
        """Entries up to `budget` passages, counting one list passage per `per_list` entries of a country:
        first the largest city of every country, then a random sample."""
        per_country = Counter(c.country for c in self.chosen.values())
        used = len(self.chosen) + sum(-(-n // per_list) for n in per_country.values())

        def add(city: _City) -> bool:
            nonlocal used
            cost = 1 + (per_country[city.country] % per_list == 0)  # a new list when the last is full
            if used + cost > budget:
                return False
            used += cost
            per_country[city.country] += 1
            self.chosen[city.geonameid] = city
            return True

        for code in sorted(self.by_country):
            free = [c for c in self.by_country[code] if self._free(c)]
            if free:
                add(min(free, key=lambda c: (-c.population, c.geonameid)))
        fill = [c for c in self.pool if c.population >= _MIN_CITY_POP_FOR_FILL and self._free(c)]
        for city in self.rng.sample(fill, len(fill)):
            if used >= budget:
                break
            add(city)

    def passage_cities(self) -> list[_City]:
        return sorted(self.chosen.values(), key=lambda c: c.geonameid)

    def ref(self, city: _City) -> _City | None:
        return self.refs.get(city.geonameid) or self._landmark(city)

    def _landmark(self, city: _City) -> _City | None:
        near = [
            other
            for km, other in _around(self.landmarks, city, _MAX_NEIGHBOUR_KM)
            if km >= _MIN_NEIGHBOUR_KM and city.folded not in other.folded and other.folded not in city.folded
        ]
        return min(near, key=lambda c: (-c.population, c.geonameid)) if near else None


def _grid(cities: Sequence[_City]) -> dict[tuple[int, int], list[_City]]:
    """Cities by 1° cell of latitude and longitude."""
    grid: dict[tuple[int, int], list[_City]] = {}
    for city in cities:
        grid.setdefault((math.floor(city.latitude), math.floor(city.longitude)), []).append(city)
    return grid


def _around(grid: dict[tuple[int, int], list[_City]], city: _City, max_km: float) -> list[tuple[float, _City]]:
    """(distance in km, city) for the grid's cities within max_km of `city`, itself excluded."""
    lat0, lon0 = math.floor(city.latitude), math.floor(city.longitude)
    # 1° of latitude is 111 km; a degree of longitude shrinks towards the poles.
    dlat = math.ceil(max_km / 111.0)
    dlon = min(180, math.ceil(max_km / max(1.0, 111.0 * math.cos(math.radians(city.latitude)))))
    out: list[tuple[float, _City]] = []
    for i in range(lat0 - dlat, lat0 + dlat + 1):
        for j in range(lon0 - dlon, lon0 + dlon + 1):
            for other in grid.get((i, (j + 180) % 360 - 180), ()):
                if other.geonameid == city.geonameid:
                    continue
                km = _distance_km(city.latitude, city.longitude, other.latitude, other.longitude)
                if km <= max_km:
                    out.append((km, other))
    return out


def _city_text(city: _City, ref: _City | None, rng: random.Random) -> str:
    """A gazetteer entry: size, position, and the way from a nearby city; not the country."""
    parts: list[_Sentence] = [
        (_CITY_POP, {"pop": _approx(city.population)}),
        (_CITY_COORDS, _coords(city.latitude, city.longitude)),
    ]
    if ref is not None:
        parts.append((_CITY_NEAR, {"ref": ref.name, **_way(ref.latitude, ref.longitude, city)}))
    rng.shuffle(parts)
    return _compose(parts, city.name, rng, noun="city")


def _city_lists(c: _Country, cities: Sequence[_City], rng: random.Random) -> list[tuple[list[_City], str]]:
    """The country's cities with their sizes, a few per passage, in random order."""
    cities = list(cities)
    rng.shuffle(cities)
    out: list[tuple[list[_City], str]] = []
    for chunk in _chunks(cities, _CITIES_PER_LIST):
        entries = [f"{city.name} (about {_approx(city.population)} people)" for city in chunk]
        template = rng.choice(_CITY_LIST if len(chunk) > 1 else _ONE_CITY_LIST)
        if template.startswith("{names}"):
            entries[0] = entries[0][0].upper() + entries[0][1:]
        out.append((chunk, template.format(names=_join(entries), s=_names(c.name)["country"])))
    return out


def _way(lat: float, lon: float, city: _City) -> dict[str, str]:
    """Distance (km, rounded) and direction from a point to the city."""
    km = _distance_km(lat, lon, city.latitude, city.longitude)
    step = round(_bearing(lat, lon, city.latitude, city.longitude) / 45) % 8
    return {"km": str(round(km)) if km < 20 else f"{5 * round(km / 5):,}", "direction": _DIRECTIONS[step]}
