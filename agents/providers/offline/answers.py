"""The offline engine's answers to how-to questions: extractive. It writes nothing of its own; it picks the
sentences of the retrieved passages that best answer the question and cites the passage of each.

A sentence's score mixes its closeness in meaning to the question (local embeddings) with the share of the
question's meaningful words it contains; the best sentence leads, and up to MAX_SENTENCES others follow when
they score nearly as well, kept in the order of their passage so the answer reads as the article does.
Sentences of lower-ranked passages count a little less (RANK_PRIOR): retrieval judged the whole passage,
this score one sentence.

A how-to question ("How do I…", "Comment…", "Where…") wants the step: when the best sentence's passage holds a
sentence that says where to go or what to do — a menu path ("Settings > Reminders"), an instruction ("Open…",
"Cliquez…", "To…, open…") — close in meaning to the question (STEP_MEANING of the closest sentence's), it joins
the answer, so "How do I set up SMS reminders?" gets "…once reminders are switched on in Settings > Reminders",
not only the timing details around it.
"""

import math
import re

from agents.grounding import with_markers
from agents.providers.base import Passage
from knowledge.embeddings import embedder
from knowledge.text import content_words, split_sentences

MAX_SENTENCES = 3
PASSAGES_READ = 3
KEEP_RATIO = 0.8  # another sentence joins the answer if it scores at least this share of the best one
MEANING_WEIGHT = 0.5
RANK_PRIOR = (1.0, 0.85, 0.75)  # retrieval's order counts: a sentence of the first passage is preferred
TOPIC_WORD_WEIGHT = 0.25  # a question word that is in the article's title or section heading says little
STEP_MEANING = 0.75  # a step sentence of the best passage joins a how-to answer when this close in meaning

HOW_TO = re.compile(
    r"^\W*(how\b|where\b|what (do|should) i do|what are the steps|comment\b|o[uù]\b|que (dois|faut)|"
    r"quelles sont les [ée]tapes|par o[uù])",
    re.IGNORECASE,
)
STEP = re.compile(
    r"\w\s*>\s*\w"  # a menu path: Settings > Reminders, Paramètres > Rappels
    r"|^(to|pour)\b[^,.]{3,80},"  # To change the wording, open…  Pour modifier…, ouvrez…
    r"|^(open|click|go to|select|choose|switch|turn|enable|tap|press|use|ouvrez|cliquez|allez|s[ée]lectionnez|"
    r"choisissez|activez|appuyez|touchez|rendez-vous|utilisez)\b",
    re.IGNORECASE,
)


def extractive_answer(question: str, passages: list[Passage]) -> str:
    candidates = [
        (passage, position, sentence)
        for passage in passages[:PASSAGES_READ]
        for position, sentence in enumerate(split_sentences(passage.text))
        if len(sentence) > 3 and not sentence.startswith("#")
    ]
    if not candidates:
        return ""
    vectors = embedder().embed([question, *(sentence for _, _, sentence in candidates)])
    question_vector, question_words = vectors[0], set(content_words(question))
    sentence_words = [set(content_words(sentence)) for _, _, sentence in candidates]
    weight = _rarity(question_words, sentence_words)
    wants_steps = bool(HOW_TO.match(question))
    scored = []
    for (passage, position, sentence), vector, words in zip(candidates, vectors[1:], sentence_words, strict=True):
        meaning = sum(a * b for a, b in zip(question_vector, vector, strict=True))
        topic = set(content_words(passage.heading))
        weights = {word: w * (TOPIC_WORD_WEIGHT if word in topic else 1.0) for word, w in weight.items()}
        overlap = sum(weights[word] for word in words & question_words) / (sum(weights.values()) or 1.0)
        score = (MEANING_WEIGHT * meaning + (1 - MEANING_WEIGHT) * overlap) * RANK_PRIOR[min(passage.number, 3) - 1]
        scored.append((score, passage, position, sentence, meaning))
    scored.sort(key=lambda item: -item[0])
    best_score, best_passage = scored[0][0], scored[0][1]
    chosen = [item for item in scored[:MAX_SENTENCES] if item[0] >= KEEP_RATIO * best_score]
    if wants_steps and not any(STEP.search(item[3]) for item in chosen):
        step = next((item for item in scored if item[1].number == best_passage.number and STEP.search(item[3])), None)
        if step is not None and step[4] >= STEP_MEANING * max(item[4] for item in scored):
            chosen = [*chosen[: MAX_SENTENCES - 1], step]
    # The best passage's sentences first, in their own order; then the others'.
    chosen.sort(key=lambda item: (item[1].number != best_passage.number, item[1].number, item[2]))
    return " ".join(with_markers(sentence, [passage.number]) for _, passage, _, sentence, _ in chosen)


def _rarity(question_words: set[str], sentence_words: list[set[str]]) -> dict[str, float]:
    """Each question word weighs more when fewer candidate sentences contain it: in "what can I do with the
    Book permission on a calendar", "book" singles out the right sentence, "calendar" does not."""
    total = len(sentence_words)
    return {word: math.log(1 + total / (1 + sum(word in words for words in sentence_words))) for word in question_words}
