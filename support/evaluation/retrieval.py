"""Retrieval quality on a dataset's knowledge cases: is the right article among the first chunks returned?

For every case whose first turn is a question and whose `expect` names articles (`cites` or `cites_any`),
the question goes through the same hybrid search the chat uses (knowledge.retrieval.search, in the language
the question is written in). hit@k: one of the expected articles is among the articles of the first k chunks.
The relevance filter of the chat (is_relevant) is reported apart: a hit the filter drops is an answer lost.
"""

from dataclasses import dataclass

from agents.providers.offline import detect_language
from knowledge.retrieval import is_relevant, search
from support.evaluation.dataset import Dataset


@dataclass(frozen=True)
class RetrievalCase:
    id: str
    question: str
    expected: tuple[str, ...]
    ranked: tuple[str, ...]  # the articles of the returned chunks, best first (repeats removed)
    relevant: bool  # the best expected chunk passes the chat's relevance filter

    def rank(self) -> int | None:
        return next((i for i, slug in enumerate(self.ranked, 1) if slug in self.expected), None)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "expected": list(self.expected),
            "ranked": list(self.ranked),
            "rank": self.rank(),
            "relevant": self.relevant,
        }


def retrieval_cases(dataset: Dataset) -> list[tuple[str, str, tuple[str, ...]]]:
    cases = []
    for case in dataset.cases:
        expected = tuple(case.expect.get("cites") or ()) or tuple(case.expect.get("cites_any") or ())
        first = case.turns[0] if case.turns else None
        if expected and first is not None and first.say:
            cases.append((case.id, first.say, expected))
    return cases


def evaluate_retrieval(dataset: Dataset, *, depth: int = 10) -> list[RetrievalCase]:
    results = []
    for case_id, question, expected in retrieval_cases(dataset):
        hits = search(question, language=detect_language(question), limit=depth)
        ranked = tuple(dict.fromkeys(hit.slug for hit in hits))
        relevant = any(hit.slug in expected and is_relevant(hit) for hit in hits)
        results.append(RetrievalCase(case_id, question, expected, ranked, relevant))
    return results


def retrieval_summary(results: list[RetrievalCase]) -> dict:
    total = len(results)

    def rate(count: int) -> float | None:
        return round(count / total, 4) if total else None

    ranks = [result.rank() for result in results]
    return {
        "questions": total,
        "hit_at_1": rate(sum(rank == 1 for rank in ranks)),
        "hit_at_3": rate(sum(rank is not None and rank <= 3 for rank in ranks)),
        "hit_at_5": rate(sum(rank is not None and rank <= 5 for rank in ranks)),
        "mrr": round(sum(1 / rank for rank in ranks if rank) / total, 4) if total else None,
        "relevant": rate(sum(result.relevant for result in results)),
    }
