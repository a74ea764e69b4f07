"""Fuzzy, deterministic matching of the words a person used against the practice's real names.

`match_candidates` is public: the graph's `resolve` step ranks members and calendars with it. It never
picks for the person: "Tom" returns both Tom Fisher and Tomas Reyes, best first, and the caller asks.
"""

from agents.providers.base import Candidate
from agents.providers.offline.text import fold, tokenize, word_set
from agents.providers.offline.text import words as word_list

# How well words match a candidate, best first.
EXACT = 6  # the full name, exactly as written
FOLDED = 5  # the full name, ignoring case and accents
PART = 4  # every word is a first or last name (or a word of a calendar's name): "Tom", "lea", "surgery"
PREFIX = 3  # every word is a name or starts one, at least 3 letters: "Tom" for Tomas, "Gir" for Girard
OVERLAP = 1  # some content words in common, with calendar-word synonyms across languages: "chirurgie"
MIN_PREFIX = 3
_GROUP = {EXACT: "full name", FOLDED: "full name", PART: "names", PREFIX: "names", OVERLAP: "words"}

# Calendar-name words across English and French: each word maps to one concept.
_CONCEPT_WORDS = {
    "surgery": "surgery surgeries surgical operating operation operations theatre theater chirurgie "
    "chirurgies chirurgical chirurgicale chirurgicales operatoire bloc",
    "appointments": "appointment appointments consultation consultations rendezvous rdv visit visits",
    "main": "regular main usual normal standard default primary general principal principale habituel "
    "habituelle ordinaire generale clinic cabinet",
    "teleconsultation": "teleconsultation teleconsultations telehealth telemedicine telemedecine video "
    "videoconsultation videoconsultations visio online",
    "home": "home domicile",
    "paediatrics": "paediatric pediatric paediatrics pediatrics pediatrie children enfants",
    "emergency": "emergency emergencies urgent urgence urgences",
}
CONCEPTS: dict[str, str] = {word: concept for concept, text in _CONCEPT_WORDS.items() for word in text.split()}
# A person's "regular" calendar is usually the one named for ordinary appointments.
_RELATED = {"main": {"main", "appointments"}, "appointments": {"appointments", "main"}}

# Words that say nothing about which member or calendar is meant.
STOPWORDS = word_set(
    "my mine your his her their our the a an of to for in on at with and or s one ones calendar calendars "
    "agenda agendas calendrier calendriers schedule diary planning dr dr. doctor docteur doc pr prof "
    "professor mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs le la les l de du des d "
    "un une celui celle au aux en sur pour avec et access acces please mien mienne"
)


def concept(word: str) -> str | None:
    """The calendar concept a folded word stands for ("chirurgie" -> "surgery"), if any."""
    return CONCEPTS.get(word)


def concepts_match(query: str, name_word: str) -> bool:
    """Whether two folded words name the same calendar concept (or a related one)."""
    left, right = concept(query), concept(name_word)
    if left is None or right is None:
        return False
    return right in _RELATED.get(left, {left})


def _content(found: list[str]) -> list[str]:
    return [word for word in found if word not in STOPWORDS]


def _is_prefix(word: str, name_words: set[str]) -> bool:
    return len(word) >= MIN_PREFIX and any(name.startswith(word) for name in name_words)


def _overlap(query: list[str], name_words: set[str]) -> int:
    return sum(1 for word in query if word in name_words or any(concepts_match(word, name) for name in name_words))


def score_candidate(phrase: str, candidate: Candidate) -> tuple[int, int]:
    """(tier, overlap) of one candidate for the phrase; tier 0 means no match."""
    if phrase.strip().casefold() == candidate.name.strip().casefold():
        return EXACT, 0
    if [token.key for token in tokenize(phrase)] == [token.key for token in tokenize(candidate.name)]:
        return FOLDED, 0
    query = _content(word_list(phrase))
    if not query:
        return 0, 0
    name_words = set(word_list(candidate.name))
    if all(word in name_words for word in query):
        return PART, len(query)
    if all(word in name_words or _is_prefix(word, name_words) for word in query):
        return PREFIX, len(query)
    overlap = _overlap(query, name_words | set(_content(word_list(candidate.extra))))
    return (OVERLAP, overlap) if overlap else (0, 0)


def rank_candidates(phrase: str, candidates: list[Candidate]) -> list[tuple[Candidate, int]]:
    """Every candidate the phrase may mean, with its tier, best first; ties keep a stable name order."""
    scored = [(candidate, *score_candidate(phrase, candidate)) for candidate in candidates]
    kept = [item for item in scored if item[1] > 0]
    kept.sort(key=lambda item: (-item[1], -item[2], fold(item[0].name), item[0].id))
    return [(candidate, tier) for candidate, tier, _ in kept]


def match_candidates(words: str | list[str], candidates: list[Candidate]) -> list[Candidate]:
    """The candidates the words may mean, best first: exact full name > full name ignoring case and
    accents > a first or last name exactly > a prefix (3+ letters) of a first or last name > words in
    common (with bilingual calendar synonyms: "chirurgie" finds "Dr Novak surgery").

    Only the best kind of match is kept: a full name hides partial matches ("Julie Martin" is not also
    Julie Dubois), names and prefixes hide mere words in common. Within it, everything is returned:
    "Tom" gives Tom Fisher and Tomas Reyes, and more than one result means the person must choose."""
    phrase = words if isinstance(words, str) else " ".join(words)
    ranked = rank_candidates(phrase, candidates)
    if not ranked:
        return []
    group = _GROUP[ranked[0][1]]
    return [candidate for candidate, tier in ranked if _GROUP[tier] == group]
