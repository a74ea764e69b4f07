"""Grounded answers: reading the citations of a draft, checking each sentence against the passages it cites,
and composing what is shown (only supported sentences, citations renumbered in order of use).

The deterministic support check here is the offline engine's fact-checker, and the fallback of the LLM
judge when that judge fails: a sentence is supported when a passage it cites contains it, or contains most
of its meaningful words and a sentence close to it in meaning.
"""

import re
from dataclasses import dataclass

from agents.providers.base import Claim, Passage
from knowledge.embeddings import embedder
from knowledge.text import content_words, fold, split_sentences

_MARKERS = re.compile(r"\s*\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")
_MARKERS_AFTER_END = re.compile(r"([.!?…]+)((?:\s*\[\d{1,2}(?:\s*,\s*\d{1,2})*\])+)")
_END = re.compile(r"([.!?…:;]+)$")
WORD_RECALL_VERBATIM = 0.8  # this share of the sentence's words in one cited passage: supported
WORD_RECALL_WITH_MEANING = 0.5  # a lower share, if a sentence of the passage is also close in meaning
MEANING_SIMILARITY = 0.7


@dataclass(frozen=True)
class GroundedAnswer:
    text: str
    citations: list[dict]  # [{"n", "slug", "title", "heading", "chunk_id"}], numbered as in the text
    removed: int  # sentences dropped for lack of support


def claims_from_text(text: str) -> list[Claim]:
    """The sentences of a draft, each with the passage numbers it cites (a marker may sit before or after
    the final punctuation)."""
    claims = []
    text = _MARKERS_AFTER_END.sub(r" \2\1", text)  # "Open it. [2] Then" → "Open it [2]. Then"
    for sentence in split_sentences(text):
        numbers = tuple(dict.fromkeys(int(n) for group in _MARKERS.findall(sentence) for n in group.split(",")))
        bare = " ".join(_MARKERS.sub("", sentence).split())
        if bare.strip(" .!?:;-"):
            claims.append(Claim(sentence=bare, citations=numbers))
    return claims


def supported_offline(claims: list[Claim], passages: list[Passage]) -> list[bool]:
    """The deterministic support check (see the module docstring). A claim citing nothing is unsupported."""
    by_number = {passage.number: passage for passage in passages}
    verdicts: list[bool | None] = []
    pending: list[tuple[int, Claim, list[Passage]]] = []
    for index, claim in enumerate(claims):
        cited = [by_number[n] for n in claim.citations if n in by_number]
        if not cited:
            verdicts.append(False)
            continue
        recall = max(_word_recall(claim.sentence, passage.text) for passage in cited)
        if _verbatim(claim.sentence, cited) or recall >= WORD_RECALL_VERBATIM:
            verdicts.append(True)
        elif recall >= WORD_RECALL_WITH_MEANING:
            verdicts.append(None)
            pending.append((index, claim, cited))
        else:
            verdicts.append(False)
    if pending:
        for index, claim, cited in pending:
            verdicts[index] = _close_in_meaning(claim.sentence, cited)
    return [bool(verdict) for verdict in verdicts]


def compose(claims: list[Claim], verdicts: list[bool], passages: list[Passage]) -> GroundedAnswer:
    """The supported sentences, each with its citation markers renumbered 1, 2… in order of first use."""
    by_number = {passage.number: passage for passage in passages}
    renumber: dict[int, int] = {}
    sentences = []
    for claim, supported in zip(claims, verdicts, strict=True):
        if not supported:
            continue
        numbers = [n for n in claim.citations if n in by_number]
        for n in numbers:
            renumber.setdefault(n, len(renumber) + 1)
        sentences.append(with_markers(claim.sentence, [renumber[n] for n in numbers]))
    citations = [
        {
            "n": new,
            "slug": by_number[old].slug,
            "title": by_number[old].title,
            "heading": by_number[old].heading,
            "chunk_id": by_number[old].chunk_id,
        }
        for old, new in renumber.items()
    ]
    return GroundedAnswer(text=" ".join(sentences), citations=citations, removed=verdicts.count(False))


def with_markers(sentence: str, numbers: list[int]) -> str:
    """'Open Settings.' + [1, 2] → 'Open Settings [1][2].'"""
    if not numbers:
        return sentence
    markers = "".join(f"[{n}]" for n in numbers)
    match = _END.search(sentence)
    if match:
        return f"{sentence[: match.start()].rstrip()} {markers}{match.group(1)}"
    return f"{sentence} {markers}"


def _verbatim(sentence: str, passages: list[Passage]) -> bool:
    wanted = " ".join(fold(sentence).rstrip(".!?…:; ").split())
    return any(wanted and wanted in " ".join(fold(passage.text).split()) for passage in passages)


def _word_recall(sentence: str, text: str) -> float:
    words = set(content_words(sentence))
    if not words:
        return 0.0
    return len(words & set(content_words(text))) / len(words)


def _close_in_meaning(sentence: str, passages: list[Passage]) -> bool:
    candidates = [s for passage in passages for s in split_sentences(passage.text)]
    if not candidates:
        return False
    vectors = embedder().embed([sentence, *candidates])
    first = vectors[0]
    return max(sum(a * b for a, b in zip(first, other, strict=True)) for other in vectors[1:]) >= MEANING_SIMILARITY
