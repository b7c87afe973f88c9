"""Building the demo dataset: the questions, every passage, and which passage answers which question."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from rag_jobs.data._common import DatasetBuilder, Where
from rag_jobs.data.demo.cities import _city_lists, _city_text, _CityPicker
from rag_jobs.data.demo.constants import (
    _CITIES_PER_LIST,
    DEFAULT_PASSAGES,
    DEFAULT_QUESTIONS,
    DEFAULT_SEED,
    QUESTION_MIX,
)
from rag_jobs.data.demo.facts import _City, _Country, _load_facts
from rag_jobs.data.demo.passages import (
    _border_pairs,
    _capital_text,
    _continent_texts,
    _country_texts,
    _currency_texts,
    _pair_text,
    _World,
)
from rag_jobs.data.demo.templates import _ANSWERED_BY, NAMESAKE_TEMPLATES, QUESTION_TEMPLATES
from rag_jobs.data.demo.text import _approx, _dedup, _fold, _names, _number_word
from rag_jobs.data.records import Dataset, Example, Passage
from rag_jobs.errors import ConfigError


def build_demo_dataset(
    seed: int = DEFAULT_SEED, n_questions: int = DEFAULT_QUESTIONS, n_passages: int = DEFAULT_PASSAGES
) -> Dataset:
    """Generate the demo dataset: `n_questions` questions over about `n_passages` passages.

    The corpus holds at least the passages of every country, capital, continent, currency and pair
    of neighbours, and the entries of every question's city and its distractors; gazetteer entries of
    more cities are added up to `n_passages`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: must be an integer, got {seed!r}")
    if isinstance(n_questions, bool) or not isinstance(n_questions, int) or n_questions < 1:
        raise ConfigError(f"n_questions: must be a positive integer, got {n_questions!r}")
    if isinstance(n_passages, bool) or not isinstance(n_passages, int) or n_passages < 1:
        raise ConfigError(f"n_passages: must be a positive integer, got {n_passages!r}")
    facts = _load_facts()
    rng = random.Random(f"rag-jobs-demo:{seed}")
    countries = facts.countries
    by_code = {c.code: c for c in countries}
    world = _World.of(countries)

    source = "built-in demo (" + ", ".join(f"{k} {v}" for k, v in facts.versions) + ")"
    builder = DatasetBuilder("demo", source, "demo")
    where = Where("demo")
    questions_by_type: Counter[str] = Counter()
    passages_by_type: Counter[str] = Counter()
    gold: dict[tuple[str, str], str] = {}  # (entity, fact) -> id of the passage that states it

    def add(pid: str, title: str, text: str, kind: str, states: Sequence[tuple[str, str]] = ()) -> None:
        builder.add_passage(Passage(pid, title, text), where, merge_identical=False)
        passages_by_type[kind] += 1
        for key in states:
            gold[key] = pid

    wanted = _question_counts(n_questions)
    eligible: dict[str, list[_Country]] = {
        "capital": list(countries),
        "continent": list(countries),
        "currency": [c for c in countries if c.currency],
        "language": [c for c in countries if c.languages],
        "borders": [c for c in countries if c.neighbours],
    }
    asked: list[tuple[str, _Country]] = []
    for kind, pool in eligible.items():
        if wanted[kind] > len(pool):
            raise ConfigError(
                f"n_questions: {n_questions} needs {wanted[kind]} {kind} questions, only {len(pool)}"
            )
        asked += [(kind, c) for c in rng.sample(pool, wanted[kind])]
        questions_by_type[kind] += wanted[kind]
    picker = _CityPicker(facts, rng)
    city_questions = picker.pick_questions(wanted["city"])

    for c in countries:
        for kind, text in _country_texts(c, world, rng):
            add(_country_pid(c, kind), c.name, text, kind, [(c.code, fact) for fact in _ANSWERED_BY.get(kind, ())])
        add(_country_pid(c, "capital"), c.capital, _capital_text(c, rng), "capital", [(c.code, "capital")])
    for continent, i, members, text in _continent_texts(countries, rng):
        add(f"demo-p-continent-{_fold(continent)}-{i}", continent, text, "continent",
            [(c.code, "continent") for c in members])  # fmt: skip
    for title, i, members, text in _currency_texts(countries, rng):
        add(f"demo-p-currency-{members[0].currency_code.lower()}-{i}", title, text, "currency",
            [(c.code, "currency") for c in members])  # fmt: skip
    for a, b in _border_pairs(countries):
        add(_pair_pid(a, b), f"{a.name} and {b.name}", _pair_text(a, b, rng), "pair")

    # City lists take about one passage for every _CITIES_PER_LIST cities: leave room for them.
    picker.fill(n_passages - builder.n_passages, _CITIES_PER_LIST)
    by_country: dict[str, list[_City]] = {}
    for city in picker.passage_cities():
        add(_city_pid(city), city.name, _city_text(city, picker.ref(city), rng), "city")
        by_country.setdefault(city.country, []).append(city)
    for c in countries:
        for i, (listed, text) in enumerate(_city_lists(c, by_country.get(c.code, []), rng), start=1):
            states = [(str(city.geonameid), "city") for city in listed]
            add(_country_pid(c, f"cities-{i}"), c.name, text, "cities", states)

    examples = [_country_question(kind, c, gold[c.code, kind], rng) for kind, c in asked]
    for q in city_questions:
        answers = _dedup((by_code[q.country].name, *by_code[q.country].aliases))
        question = _city_question(q, picker, rng)
        examples.append(Example(f"demo-q-city-{q.geonameid}", question, answers, (gold[str(q.geonameid), "city"],)))
    questions_by_type["city"] += len(city_questions)

    examples.sort(key=lambda ex: ex.id)
    for ex in examples:
        builder.add_example(ex, where)
    return builder.build(
        require_corpus=True,
        seed=seed,
        questions_by_type=dict(sorted(questions_by_type.items())),
        passages_by_type=dict(sorted(passages_by_type.items())),
    )


def _country_question(kind: str, c: _Country, gold: str, rng: random.Random) -> Example:
    question = rng.choice(QUESTION_TEMPLATES[kind]).format(**_names(c.name))
    if kind == "capital":
        answers: tuple[str, ...] = (c.capital, *c.capital_aliases)
    elif kind == "continent":
        answers = (c.continent,)
    elif kind == "currency":
        answers = (c.currency, c.currency_code)
    elif kind == "language":
        answers = c.languages
    else:  # borders
        n = len(c.neighbours)
        answers = (str(n), _number_word(n))
    return Example(f"demo-q-{kind}-{c.code.lower()}", question, _dedup(answers), (gold,))


def _city_question(city: _City, picker: _CityPicker, rng: random.Random) -> str:
    if picker.has_namesakes(city):
        return rng.choice(NAMESAKE_TEMPLATES).format(city=city.name, pop=_approx(city.population))
    return rng.choice(QUESTION_TEMPLATES["city"]).format(city=city.name)


def _question_counts(n: int) -> dict[str, int]:
    """Questions per type: the mix's shares of n, rounded by largest remainder."""
    exact = {kind: n * share for kind, share in QUESTION_MIX}
    counts = {kind: int(x) for kind, x in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))
    for kind in by_remainder[: n - sum(counts.values())]:
        counts[kind] += 1
    return counts

def _country_pid(c: _Country, kind: str) -> str:
    return f"demo-p-{c.code.lower()}-{kind}"


def _pair_pid(a: _Country, b: _Country) -> str:
    return f"demo-p-pair-{a.code.lower()}-{b.code.lower()}"


def _city_pid(city: _City) -> str:
    return f"demo-p-city-{city.geonameid}"
