"""Plain-text helpers shared by chunking, answering and fact-checking: sentences and content words."""

import re
import unicodedata

# A sentence ends at . ! ? (or …), with its closing quotes, followed by a space and what starts a sentence
# (possibly an opening quote, which French spaces: « Merci »). Common abbreviations ("Dr.", "e.g.") do not end one.
_SENTENCE_END = re.compile(r"([.!?…][\"»”)]*)\s+(?=[\"«“(]?\s?[A-ZÀ-ÖØ-Þ0-9])")
_ABBREVIATIONS = ("dr.", "mr.", "mrs.", "ms.", "e.g.", "i.e.", "etc.", "vs.", "no.", "st.", "m.", "mme.", "p.ex.")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

_STOPWORD_TEXT = """a an the and or but if then of to in on at by for with from as is are was were be been being it its
    this that these those there here what which who whom how why when where do does did done can could should
    would will shall may might must i me my we our you your he she they them their his her not no yes so than
    too very just also only any all some each into out up down over under again about after before such own
    same other more most get got have has had having let please want need like know tell show way thing
    le la les un une des du de d l et ou mais si donc que qui quoi quel quelle quels quelles comment pourquoi
    quand où est sont être été ai as a avons avez ont je j me m moi mon ma mes tu te t ton ta tes il elle ils
    elles on nous vous leur leurs se s ce c cet cette ces dans sur sous par pour avec sans en au aux y ne n
    pas plus moins très aussi faire fait peut peux pouvez puis veux voulez comme tout tous toute toutes
"""


def split_sentences(text: str) -> list[str]:
    """The sentences of a passage, trimmed. Lines without end punctuation (list items) stay whole."""
    sentences: list[str] = []
    for line in re.split(r"\n\s*\n|\n(?=\s*[-*•] )|\n(?=\s*\d+[.)] )", text):
        line = " ".join(line.split())
        if not line:
            continue
        pending = ""
        for piece in _SENTENCE_END.sub("\\1\n", line).split("\n"):
            pending = f"{pending} {piece}".strip() if pending else piece.strip()
            if pending.rsplit(" ", 1)[-1].lower().lstrip('"«“(') in _ABBREVIATIONS:  # a word: "first." is no "st."
                continue
            sentences.append(pending)
            pending = ""
        if pending:
            sentences.append(pending)
    return sentences


def fold(text: str) -> str:
    """Lower case without accents: 'Réglages' and 'reglages' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def content_words(text: str) -> list[str]:
    """The words that carry meaning (folded, stop words and one-letter words left out), crudely stemmed."""
    return [_stem(word) for word in _WORD.findall(fold(text)) if len(word) > 1 and word not in STOPWORDS]


def _stem(word: str) -> str:
    """A light suffix strip so that 'appointments' meets 'appointment' and 'horaires' meets 'horaire'
    (a final e goes too: 'change', 'changes' and 'changed' all give 'chang')."""
    for suffix in ("ing", "ed", "es", "s", "x"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


STOPWORDS = frozenset(fold(word) for word in _STOPWORD_TEXT.split())
