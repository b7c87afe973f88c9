"""Passages about countries: their own passages, capitals, continent and currency lists, neighbour pairs."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rag_jobs.data.demo.constants import _COUNTRIES_PER_LIST, _SHARERS_NAMED, _USERS_PER_LIST
from rag_jobs.data.demo.facts import _Country
from rag_jobs.data.demo.templates import (
    _ANSWERS,
    _AREA,
    _BORDERS,
    _CAPITAL,
    _CAPITAL_SIZE,
    _CENTRE,
    _CITY_COORDS,
    _CITY_POP,
    _CONTINENT_LIST,
    _CONTINENT_LIST_MORE,
    _CURRENCY_LIST,
    _CURRENCY_LIST_MORE,
    _CURRENCY_OWN,
    _CURRENCY_SHARED,
    _DEMONYM,
    _HEMISPHERES,
    _LANGUAGE_OWN,
    _LANGUAGE_SHARED,
    _LANGUAGES,
    _NEIGHBOURS_OTHER_CONTINENT,
    _NEIGHBOURS_SAME_CONTINENT,
    _NO_BORDERS,
    _ONE_LANGUAGE,
    _PAIR_AREAS,
    _PAIR_BORDER,
    _PAIR_CAPITALS,
    _PAIR_RELATIONS,
    _PHONE,
    _POPULATION,
    _SUBREGION_LIST,
    _TLD,
    COUNTRY_PASSAGES,
)
from rag_jobs.data.demo.text import _approx, _coords, _distance_km, _fold, _join, _names, _number_word


@dataclass(frozen=True)
class _World:
    """What a country's passages say about the others."""

    names: dict[str, str]  # code -> name
    continents: dict[str, str]  # code -> continent
    currency_users: dict[str, list[str]]  # currency code -> codes of the countries using it
    language_users: dict[str, list[str]]  # main language -> codes of the countries where it is main

    @staticmethod
    def of(countries: Sequence[_Country]) -> _World:
        return _World(
            names={c.code: c.name for c in countries},
            continents={c.code: c.continent for c in countries},
            currency_users=_group_by(countries, lambda c: c.currency_code if c.currency else ""),
            language_users=_group_by(countries, lambda c: c.languages[0] if c.languages else ""),
        )


def _group_by(countries: Sequence[_Country], key: Callable[[_Country], str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for c in countries:
        if key(c):
            groups.setdefault(key(c), []).append(c.code)
    return groups


# --- country passages --------------------------------------------------------------------------------

_Sentence = tuple[tuple[str, ...], dict[str, str]]  # wordings of one sentence, and its fields


def _compose(parts: Sequence[_Sentence], name: str, rng: random.Random, *, noun: str = "country") -> str:
    """One wording per sentence, in the given order; the first names the subject, later ones vary."""
    names = _names(name) if noun == "country" else {"country": name, "Country": name}  # "The Valley"
    out: list[str] = []
    for i, (group, fields) in enumerate(parts):
        if i == 0:
            subject, inner = names["Country"], names["country"]
        else:
            # "The city is home to ..." after "The city lies at ..." reads badly: cities use a pronoun.
            subject = rng.choice((names["Country"], "It") + (("The country",) if noun == "country" else ()))
            inner = rng.choice((names["country"], f"the {noun}"))
        out.append(rng.choice(group).format(S=subject, s=inner, **fields))
    return " ".join(out)


def _country_facts(c: _Country, world: _World, rng: random.Random) -> dict[str, list[_Sentence]]:
    """The facts of the country's own passages, each as sentences that stay together in this order."""
    facts: dict[str, list[_Sentence]] = {}
    n = len(c.neighbours)
    if n:
        fields = {
            "n_word": _number_word(n),
            "countries": "country" if n == 1 else "countries",
            "neighbours": "neighbour" if n == 1 else "neighbours",
            "names": _join([_names(world.names[code])["country"] for code in c.neighbours]),
        }
        facts["borders"] = [(_BORDERS, fields)]
        other = any(world.continents[code] != c.continent for code in c.neighbours)
        facts["neighbours_continent"] = [(_NEIGHBOURS_OTHER_CONTINENT if other else _NEIGHBOURS_SAME_CONTINENT, {})]
    else:
        facts["borders"] = [(_NO_BORDERS, {})]
    if c.currency:
        group = world.currency_users[c.currency_code]
        facts["currency_shared"] = [_sharing(_CURRENCY_SHARED, _CURRENCY_OWN, c, group, world, rng)]
    if c.languages:
        one = len(c.languages) == 1
        facts["language"] = [(_ONE_LANGUAGE if one else _LANGUAGES, {"langs": _join(c.languages)})]
        group = world.language_users[c.languages[0]]
        facts["language_shared"] = [_sharing(_LANGUAGE_SHARED, _LANGUAGE_OWN, c, group, world, rng)]
    if c.tld:
        facts["tld"] = [(_TLD, {"tld": c.tld})]
    if c.phone:
        facts["phone"] = [(_PHONE, {"phone": c.phone})]
    facts["population"] = [(_POPULATION, {"pop": _approx(c.population)})]
    if c.demonym:
        facts["demonym"] = [(_DEMONYM, {"demonym": c.demonym})]
    if c.centre is not None:
        lat, lon = c.centre
        facts["centre"] = [(_CENTRE, _coords(lat, lon, digits=0))]
        if abs(lat) >= 1 and abs(lon) >= 1:  # the centre's hemispheres, where unambiguous
            sides = {"ns": "northern" if lat > 0 else "southern", "ew": "eastern" if lon > 0 else "western"}
            facts["hemispheres"] = [(_HEMISPHERES, sides)]
    if c.area > 0:
        facts["area"] = [(_AREA, {"area": f"{round(c.area):,}"})]
    if c.capital_population > 0:
        facts["capital_size"] = [(_CAPITAL_SIZE, {"cap_pop": _approx(c.capital_population)})]
    return facts


def _sharing(
    shared: tuple[str, ...], own: tuple[str, ...], c: _Country, group: Sequence[str], world: _World, rng: random.Random
) -> _Sentence:
    """That the country shares its currency or main language with others (never which it is), naming
    a few of them: its neighbours first, then others at random."""
    others = [code for code in group if code != c.code]
    if not others:
        return (own, {})
    # Not "the French Southern Territories" among the examples for a French-speaking country.
    answers = [*c.languages, c.currency]
    nameable = [code for code in others if not any(a and a in world.names[code] for a in answers)]
    near = [code for code in c.neighbours if code in nameable]
    far = [code for code in nameable if code not in near]
    picks = (near + rng.sample(far, len(far)))[:_SHARERS_NAMED]
    names = [_names(world.names[code])["country"] for code in picks]
    places = "country or territory" if len(others) == 1 else "countries and territories"
    examples = ""
    if picks:
        examples = (", namely " if len(others) == len(picks) else ", among them ") + _join(names)
    return (shared, {"n_other": _number_word(len(others)), "places": places, "examples": examples})


def _country_texts(c: _Country, world: _World, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, text) of the country's own passages: the facts of each in random order, though never
    opening with the answer to a question when some other fact can."""
    facts = _country_facts(c, world, rng)
    out: list[tuple[str, str]] = []
    for kind, names in COUNTRY_PASSAGES:
        present = [name for name in names if name in facts]
        if not present:
            continue
        rng.shuffle(present)
        leads = [i for i, name in enumerate(present) if name not in _ANSWERS]
        if leads and leads[0] > 0:
            present.insert(0, present.pop(leads[0]))
        out.append((kind, _compose([sentence for name in present for sentence in facts[name]], c.name, rng)))
    return out


def _capital_text(c: _Country, rng: random.Random) -> str:
    """The capital's own passage: the only one that names the capital of the country."""
    parts: list[_Sentence] = [(_CAPITAL, {"country": _names(c.name)["country"]})]
    if c.capital_population > 0:
        parts.append((_CITY_POP, {"pop": _approx(c.capital_population)}))
    if c.capital_coords is not None:
        parts.append((_CITY_COORDS, _coords(*c.capital_coords)))
    rng.shuffle(parts)
    return _compose(parts, c.capital, rng, noun="city")


def _continent_texts(
    countries: Sequence[_Country], rng: random.Random
) -> list[tuple[str, int, list[_Country], str]]:
    """(continent, number, countries, text): the countries of each continent, by region, a few per
    passage."""
    out: list[tuple[str, int, list[_Country], str]] = []
    continents = sorted({c.continent for c in countries})
    for continent in continents:
        members = sorted((c for c in countries if c.continent == continent), key=lambda c: (c.subregion, c.name))
        chunks = _chunks(members, _COUNTRIES_PER_LIST, key=lambda c: c.subregion)
        for i, chunk in enumerate(chunks, start=1):
            names = _join([_names(c.name)["Country" if j == 0 else "country"] for j, c in enumerate(chunk)])
            group = _CONTINENT_LIST if i == 1 else _CONTINENT_LIST_MORE
            template = rng.choice(group)
            if template.startswith("{continent}"):
                names = _join([_names(c.name)["country"] for c in chunk])
            text = template.format(names=names, continent=continent)
            subregion = chunk[0].subregion
            if subregion and _fold(subregion) != _fold(continent) and all(c.subregion == subregion for c in chunk):
                text += " " + rng.choice(_SUBREGION_LIST).format(subregion=subregion)
            out.append((continent, i, chunk, text))
    return out


def _currency_texts(
    countries: Sequence[_Country], rng: random.Random
) -> list[tuple[str, int, list[_Country], str]]:
    """(title, number, countries, text): the users of each currency, a few per passage."""
    out: list[tuple[str, int, list[_Country], str]] = []
    users: dict[tuple[str, str], list[_Country]] = {}
    for c in countries:
        if c.currency:
            users.setdefault((c.currency_code, c.currency), []).append(c)
    numbers: Counter[str] = Counter()  # passages per currency code, for unique ids
    for (code, currency), members in sorted(users.items()):
        members = sorted(members, key=lambda c: c.name)
        for chunk in _chunks(members, _USERS_PER_LIST):
            numbers[code] += 1
            i = numbers[code]
            template = rng.choice(_CURRENCY_LIST if i == 1 else _CURRENCY_LIST_MORE)
            first = "Country" if template.startswith("{names}") else "country"
            names = _join([_names(c.name)[first if j == 0 else "country"] for j, c in enumerate(chunk)])
            fields = {"names": names, "currency": currency, "code": code, "pay": "pay" if len(chunk) > 1 else "pays"}
            out.append((f"{currency} ({code})", i, chunk, template.format(**fields)))
    return out


def _chunks(items: Sequence[Any], size: int, key: Callable[[Any], str] | None = None) -> list[list[Any]]:
    """Runs of at most `size` items; with a key, a run never mixes keys."""
    out: list[list[Any]] = []
    for item in items:
        if out and len(out[-1]) < size and (key is None or key(out[-1][0]) == key(item)):
            out[-1].append(item)
        else:
            out.append([item])
    return out


def _border_pairs(countries: Sequence[_Country]) -> list[tuple[_Country, _Country]]:
    """Every pair of neighbours once, in code order."""
    by_code = {c.code: c for c in countries}
    pairs = {tuple(sorted((c.code, n))) for c in countries for n in c.neighbours if n in by_code}
    return [(by_code[a], by_code[b]) for a, b in sorted(pairs)]


def _pair_text(a: _Country, b: _Country, rng: random.Random) -> str:
    """The border, then in random order how the two compare: area, the distance between their capitals,
    and whether they share a currency, a main language and a continent (never which)."""
    if rng.random() < 0.5:
        a, b = b, a
    na, nb = _names(a.name), _names(b.name)
    fields = {"A": na["Country"], "a": na["country"], "b": nb["country"]}
    comparisons: list[str] = []
    if a.area > 0 and b.area > 0 and round(a.area) != round(b.area):
        larger = na["country"] if a.area > b.area else nb["country"]
        areas = {"area_a": f"{round(a.area):,}", "area_b": f"{round(b.area):,}", "larger": larger}
        comparisons.append(rng.choice(_PAIR_AREAS).format(**fields, **areas))
    if a.capital_coords is not None and b.capital_coords is not None:
        km = _distance_km(*a.capital_coords, *b.capital_coords)
        comparisons.append(rng.choice(_PAIR_CAPITALS).format(km=f"{10 * round(km / 10):,}"))
    if a.currency and b.currency:
        comparisons.append(rng.choice(_PAIR_RELATIONS["currency", a.currency_code == b.currency_code]))
    if a.languages and b.languages:
        comparisons.append(rng.choice(_PAIR_RELATIONS["language", a.languages[0] == b.languages[0]]))
    comparisons.append(rng.choice(_PAIR_RELATIONS["continent", a.continent == b.continent]))
    rng.shuffle(comparisons)
    return " ".join([rng.choice(_PAIR_BORDER).format(**fields), *comparisons])
