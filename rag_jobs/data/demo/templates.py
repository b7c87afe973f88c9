"""The phrase tuples: question wordings, and the wordings of every passage sentence."""

from __future__ import annotations

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
