"""The demo dataset's default sizes, question mix, and the limits its builders work to."""

from __future__ import annotations

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
