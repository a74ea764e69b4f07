"""Text helpers shared by the offline engine: accent-insensitive folding that keeps character offsets,
word tokens with their spans, and a rule-based English/French language guess."""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# A word, keeping inner hyphens ("rendez-vous", "Jean-Pierre", "read-only") in one token.
_TOKEN_RE = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"}


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char in _APOSTROPHES:
        return "'"
    base = unicodedata.normalize("NFKD", char)[:1] or char
    if unicodedata.combining(base):
        return char.lower()[:1]
    return base.lower()[:1]


def nfc(text: str) -> str:
    """The text in composed form: every offset computed on it matches the offsets in `fold(text)`."""
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case, accent-free, straight apostrophes, and exactly one character per character of
    `nfc(text)`, so a match found in the folded text points at the same span in the original."""
    return "".join(_fold_char(char) for char in nfc(text))


@dataclass(frozen=True)
class Token:
    """One word: as written, folded, and where it sits in the (NFC) text."""

    text: str
    fold: str
    start: int
    end: int

    @property
    def key(self) -> str:
        """The folded word without hyphens, for vocabulary look-ups ("rendez-vous" -> "rendezvous")."""
        return self.fold.replace("-", "")

    @property
    def capitalized(self) -> bool:
        return self.text[:1].isupper()


def tokenize(text: str) -> list[Token]:
    """Words of the text with their spans in `nfc(text)`."""
    original = nfc(text)
    folded = fold(original)
    return [Token(original[m.start() : m.end()], m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(folded)]


def word_set(text: str) -> frozenset[str]:
    """A set of words written as one space-separated string (easier to read and extend)."""
    return frozenset(text.split())


def words(text: str) -> list[str]:
    """Folded words of a short phrase, splitting hyphenated words into their parts as well."""
    result: list[str] = []
    for token in tokenize(text):
        result.append(token.key)
        if "-" in token.fold:
            result.extend(part for part in token.fold.split("-") if part)
    return result


FRENCH_WORDS = word_set(
    "le la les un une des du de mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs je tu il "
    "elle nous vous ils elles est sont et ou pour avec sur dans pas ne que qui quoi comment pourquoi "
    "quel quelle quels quelles au aux ce cette ces agenda acces bonjour merci oui non veux voudrais "
    "voudrait peux pouvez puis donne donnez retire retirez supprime enleve plus moi mot passe "
    "rendez-vous parler conseiller aide lecture gestion chirurgie horaires ouverture patient absent "
    "oublie doit devrait faire changer modifier besoin toujours encore aussi mais donc car chez"
)
ENGLISH_WORDS = word_set(
    "the an my your our their his her to of in is are and or for with how what why when where which who "
    "can could would should please give access you it this that need needs do does calendar want remove "
    "see book me from be have has not no yes hello hi thanks thank let make change forgot password speak "
    "someone appointments surgery view manage booking rights record again turn up"
)
_ELISION_RE = re.compile(r"\b(?:l|d|j|qu|n|c|s|m|t)'[a-z]")


def detect_language(text: str) -> str:
    """ "fr" or "en", from common words, French elisions (l', d', qu') and accents on lower-case words
    (capitalised words are left out: "Léa" does not make a sentence French). Ties go to English."""
    tokens = tokenize(text)
    french = sum(token.fold in FRENCH_WORDS for token in tokens)
    english = sum(token.fold in ENGLISH_WORDS for token in tokens)
    french += len(_ELISION_RE.findall(fold(text)))
    accented = sum(1 for token in tokens if not token.capitalized and token.fold != token.text.lower())
    french += accented
    return "fr" if french > english else "en"
