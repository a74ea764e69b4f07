"""Hybrid retrieval against real pgvector + full-text: published only, the person's language first with a
fallback, the relevance filter, ef_search set per query, and a query parser no input can break."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge.indexing import index_article
from knowledge.models import Chunk
from knowledge.retrieval import is_relevant, search, tsquery_text
from knowledge.services import ArticleContent, article_archive, article_update

PRINTING_EN = "To print the day's schedule, open Agenda and choose Print. Choose portrait for long days."
PRINTING_FR = "Pour imprimer le planning du jour, ouvrez Agenda puis choisissez Imprimer. Préférez le mode portrait."
PASSWORD = "Open your profile menu, select Security, then Change password. The new password needs twelve characters."


@pytest.fixture
def published(make_article):
    def publish(slug, body, *, title=None, language="en"):
        article = make_article(slug, body=body, title=title, language=language, publish=True)
        index_article(article.pk)
        return article

    return publish


def slugs(hits) -> list[str]:
    return [hit.slug for hit in hits]


def test_the_right_article_comes_first_with_its_ranks_and_similarity(published):
    published("printing", PRINTING_EN, title="Print the schedule")
    published("password", PASSWORD, title="Change your password")

    hits = search("How do I print my schedule for today?", language="en")

    assert slugs(hits)[0] == "printing"
    best = hits[0]
    assert best.vector_rank == 1 and best.text_rank == 1
    assert best.similarity > 0.4 and is_relevant(best)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert best.heading_path == "Print the schedule" and best.text.startswith("To print")


def test_the_persons_language_comes_first_and_the_other_is_a_fallback(published):
    published("printing", PRINTING_EN, title="Print the schedule")
    published("imprimer", PRINTING_FR, title="Imprimer le planning", language="fr")

    assert slugs(search("Comment imprimer le planning du jour ?", language="fr"))[0] == "imprimer"
    assert slugs(search("How do I print the schedule?", language="en"))[0] == "printing"


def test_a_question_in_a_language_without_articles_still_finds_the_other_language(published):
    published("printing", PRINTING_EN, title="Print the schedule")

    hits = search("Comment imprimer le planning ? (print schedule)", language="fr")

    assert slugs(hits) == ["printing"]


def test_drafts_archived_articles_and_unpublished_edits_are_never_returned(make_article, published, editor):
    make_article("draft-printing", body=PRINTING_EN)  # a draft: never indexed
    archived = published("old-printing", PRINTING_EN)
    article_archive(actor=editor, article=archived)
    live = published("printing", "Printing happens in Agenda > Print.")
    article_update(actor=editor, article=live, content=ArticleContent(title="P", language="en", body=PRINTING_FR))

    hits = search("print the day's schedule in portrait", language="en", limit=10)

    assert slugs(hits) == ["printing"]
    assert hits[0].text == "Printing happens in Agenda > Print."  # the published revision, not the edit


def test_vectors_of_another_embedding_model_are_never_compared(published):
    published("printing", PRINTING_EN)
    Chunk.objects.update(embedding_model="another/model")

    hits = search("How do I print the schedule?", language="en")

    assert all(hit.vector_rank is None for hit in hits)  # found by its words only
    assert slugs(hits) == ["printing"]


def test_an_unrelated_question_gets_hits_but_none_relevant(published):
    published("printing", PRINTING_EN)
    published("password", PASSWORD)

    hits = search("What is the capital of Australia?", language="en")

    assert hits and not any(is_relevant(hit) for hit in hits)


def test_ef_search_is_set_for_each_query(published, settings):
    published("printing", PRINTING_EN)
    settings.KNOWLEDGE_EF_SEARCH = 123
    with CaptureQueriesContext(connection) as queries:
        search("print", language="en")
    assert any("SET LOCAL hnsw.ef_search = 123" in query["sql"] for query in queries.captured_queries)


@pytest.mark.parametrize(
    "question",
    ["foo & bar | !(baz):*", "'; DROP TABLE knowledge_chunk; --", "<->", "\\", "print:* & !!", "a" * 5000],
)
def test_no_question_breaks_the_query(published, question):
    published("printing", PRINTING_EN)

    search(question, language="en")  # no error

    assert Chunk.objects.count() == 1


def test_only_letters_and_digits_reach_the_query_parser():
    assert tsquery_text("foo & bar | !(baz):* foo") == "foo | bar | baz"
    assert tsquery_text("Réglages d'agenda 2FA") == "réglages | d | agenda | 2fa"
    assert tsquery_text("?!") == ""


def test_an_empty_question_returns_nothing(db):
    assert search("   ", language="en") == []
