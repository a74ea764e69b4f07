"""Embedders: the local model, and an OpenAI-compatible endpoint over real HTTP (the scripted server)."""

import base64
import json
import math
import struct
import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured

from agents.scripted_llm import Reply, Script, ScriptedLLMServer, hash_embedding
from knowledge.embeddings import (
    EMBEDDING_DIMENSIONS,
    LOCAL_MODEL_NAME,
    EmbeddingError,
    LocalEmbedder,
    OpenAIEmbedder,
    embedder,
    embedder_from_settings,
    embedder_reset,
)
from knowledge.indexing import embedding_text, index_article
from knowledge.models import Chunk

MODEL = "text-embedding-3-small"


def norm(vector) -> float:
    return math.sqrt(sum(value * value for value in vector))


def cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


def unit(vector) -> list[float]:
    length = norm(vector)
    return [value / length for value in vector]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def base_url(script) -> str:
    with ScriptedLLMServer(script) as url:
        yield url + "/v1"


def remote(base_url: str, *, send_dimensions: bool = True) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        base_url=base_url, model=MODEL, api_key="test-key", timeout=5, send_dimensions=send_dimensions
    )


def raw_post(base_url: str, body: object, path: str = "/embeddings") -> tuple[int, dict]:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- The local model -----------------------------------------------------------------------------------------


def test_local_vectors_are_384_unit_length_numbers():
    vectors = LocalEmbedder().embed(["How do I change my password?", "Comment modifier mes horaires ?"])

    assert LocalEmbedder.name == LOCAL_MODEL_NAME
    assert [len(vector) for vector in vectors] == [EMBEDDING_DIMENSIONS] * 2
    assert all(abs(norm(vector) - 1) < 1e-4 for vector in vectors)
    assert all(isinstance(value, float) for value in vectors[0])
    assert LocalEmbedder().embed([]) == []


def test_local_vectors_put_similar_sentences_closer_than_unrelated_ones():
    question, paraphrase, unrelated, same_again = LocalEmbedder().embed(
        [
            "How do I change my password?",
            "Steps to reset the password of your account",
            "Patients on the waiting list are offered freed slots by SMS.",
            "How do I change my password?",
        ]
    )

    assert cosine(question, paraphrase) > cosine(question, unrelated) + 0.4
    assert cosine(question, same_again) > 0.9999


# --- An OpenAI-compatible endpoint ---------------------------------------------------------------------------


def test_remote_vectors_are_normalized_and_in_the_order_of_the_texts(base_url, script):
    texts = ["first text", "second text", "first text"]

    vectors = remote(base_url).embed(texts)

    (request,) = script.embedding_requests
    assert (request["model"], request["input"], request["dimensions"]) == (MODEL, texts, EMBEDDING_DIMENSIONS)
    assert [len(vector) for vector in vectors] == [EMBEDDING_DIMENSIONS] * 3
    assert all(abs(norm(vector) - 1) < 1e-6 for vector in vectors)
    expected = unit(hash_embedding("second text", EMBEDDING_DIMENSIONS))
    assert max(abs(a - b) for a, b in zip(vectors[1], expected, strict=True)) < 1e-6  # float32 on the wire
    assert vectors[0] == vectors[2] != vectors[1]


def test_remote_vectors_of_any_length_are_made_unit_length(base_url, script):
    script.embed = lambda text, dimensions: [3.0] * dimensions

    (vector,) = remote(base_url).embed(["anything"])

    assert vector == pytest.approx([1 / math.sqrt(EMBEDDING_DIMENSIONS)] * EMBEDDING_DIMENSIONS)


def test_the_embedder_is_named_after_the_remote_model(base_url):
    assert remote(base_url).name == f"openai/{MODEL}"


def test_texts_are_sent_in_batches(base_url, script):
    texts = [f"text number {i}" for i in range(150)]

    vectors = remote(base_url).embed(texts)

    assert [len(request["input"]) for request in script.embedding_requests] == [64, 64, 22]
    assert [text for request in script.embedding_requests for text in request["input"]] == texts
    assert len(vectors) == 150
    assert vectors[100] == remote(base_url).embed(["text number 100"])[0]


def test_no_texts_means_no_request(base_url, script):
    assert remote(base_url).embed([]) == []
    assert script.embedding_requests == []


def test_without_dimensions_a_model_of_another_size_is_an_error(base_url, script):
    with pytest.raises(EmbeddingError, match="returned 1536 dimensions, 384 needed"):
        remote(base_url, send_dimensions=False).embed(["a text"])

    assert "dimensions" not in script.embedding_requests[0]


def test_a_wrong_dimension_count_is_an_error(base_url, script):
    script.add_embeddings(Reply.embeddings([[0.5] * 100]))

    with pytest.raises(EmbeddingError, match="returned 100 dimensions, 384 needed"):
        remote(base_url).embed(["a text"])


def test_a_wrong_vector_count_is_an_error(base_url, script):
    script.add_embeddings(Reply.embeddings([[0.5] * EMBEDDING_DIMENSIONS]))

    with pytest.raises(EmbeddingError, match="returned 1 vectors for 2 texts"):
        remote(base_url).embed(["one", "two"])


def test_a_server_error_is_an_embedding_error_after_the_retries(base_url, script):
    script.add_embeddings(*[Reply.error(500, "overloaded", retry_after_ms=1)] * 3)

    with pytest.raises(EmbeddingError, match="the embeddings endpoint failed: .*overloaded"):
        remote(base_url).embed(["a text"])

    assert len(script.embedding_requests) == 3  # the first try and two retries


def test_a_server_error_then_success_gives_the_vectors(base_url, script):
    script.add_embeddings(Reply.error(503, "busy", retry_after_ms=1))

    (vector,) = remote(base_url).embed(["a text"])

    assert len(vector) == EMBEDDING_DIMENSIONS
    assert len(script.embedding_requests) == 2


def test_a_refused_request_is_not_retried(base_url, script):
    script.add_embeddings(Reply.error(401, "bad key"))

    with pytest.raises(EmbeddingError, match="bad key"):
        remote(base_url).embed(["a text"])

    assert len(script.embedding_requests) == 1


# --- Choosing the embedder -----------------------------------------------------------------------------------


def test_openai_without_a_base_url_is_improperly_configured(settings):
    settings.EMBEDDINGS_PROVIDER = "openai"
    settings.EMBEDDINGS_BASE_URL = ""

    with pytest.raises(ImproperlyConfigured, match="EMBEDDINGS_BASE_URL"):
        embedder_from_settings()


def test_an_unknown_provider_is_improperly_configured(settings):
    settings.EMBEDDINGS_PROVIDER = "magic"

    with pytest.raises(ImproperlyConfigured, match="local or openai"):
        embedder_from_settings()


def test_the_settings_choose_the_embedder_once_per_process(settings, base_url, script):
    assert embedder().name == LOCAL_MODEL_NAME
    settings.EMBEDDINGS_PROVIDER = "openai"
    settings.EMBEDDINGS_BASE_URL = base_url
    settings.EMBEDDINGS_MODEL = "my-embedder"
    settings.EMBEDDINGS_SEND_DIMENSIONS = True
    assert embedder().name == LOCAL_MODEL_NAME  # kept until reset

    embedder_reset()

    chosen = embedder()
    assert chosen.name == "openai/my-embedder"
    assert embedder() is chosen
    assert len(chosen.embed(["a text"])[0]) == EMBEDDING_DIMENSIONS
    (request,) = script.embedding_requests
    assert (request["model"], request["dimensions"]) == ("my-embedder", EMBEDDING_DIMENSIONS)


def test_embedder_from_settings_builds_the_configured_remote_embedder(settings, base_url):
    settings.EMBEDDINGS_PROVIDER = "openai"
    settings.EMBEDDINGS_BASE_URL = base_url
    settings.EMBEDDINGS_MODEL = "my-embedder"
    settings.EMBEDDINGS_SEND_DIMENSIONS = False

    built = embedder_from_settings()

    assert isinstance(built, OpenAIEmbedder)
    assert (built.name, built.model, built.send_dimensions) == ("openai/my-embedder", "my-embedder", False)
    settings.EMBEDDINGS_PROVIDER = "local"
    assert isinstance(embedder_from_settings(), LocalEmbedder)


@pytest.mark.django_db
def test_articles_are_indexed_through_the_remote_endpoint(settings, base_url, script, make_article):
    settings.EMBEDDINGS_PROVIDER = "openai"
    settings.EMBEDDINGS_BASE_URL = base_url
    settings.EMBEDDINGS_MODEL = MODEL
    embedder_reset()
    article = make_article(body="Intro.\n\n## Settings\n\nOpen Settings.", publish=True)

    assert index_article(article.pk) == 2

    chunks = list(Chunk.objects.filter(article=article).order_by("position"))
    assert {chunk.embedding_model for chunk in chunks} == {f"openai/{MODEL}"}
    (request,) = script.embedding_requests
    assert request["input"] == [embedding_text(chunk.heading_path, chunk.text) for chunk in chunks]


# --- The scripted endpoint itself ----------------------------------------------------------------------------


def test_the_scripted_endpoint_answers_floats_or_base64(base_url):
    status, as_floats = raw_post(base_url, {"model": "m", "input": "hello", "dimensions": 4})
    _, as_base64 = raw_post(base_url, {"model": "m", "input": ["hello"], "dimensions": 4, "encoding_format": "base64"})

    assert status == 200
    assert as_floats["data"] == [{"object": "embedding", "index": 0, "embedding": hash_embedding("hello", 4)}]
    decoded = struct.unpack("<4f", base64.b64decode(as_base64["data"][0]["embedding"]))
    assert decoded == pytest.approx(hash_embedding("hello", 4), abs=1e-6)
    assert (as_floats["object"], as_floats["model"], as_floats["usage"]["prompt_tokens"]) == ("list", "m", 1)


def test_the_scripted_endpoint_uses_its_default_size_and_accepts_token_arrays(base_url):
    _, answer = raw_post(base_url, {"model": "m", "input": [[1, 2, 3], [4]]})

    assert [len(item["embedding"]) for item in answer["data"]] == [1536, 1536]
    assert answer["data"][0]["embedding"] == hash_embedding("[1, 2, 3]", 1536)


@pytest.mark.parametrize(
    "body",
    [{"model": "m"}, {"input": []}, {"input": [1.5]}, {"input": "x", "dimensions": 0}, {"input": [None]}],
)
def test_the_scripted_endpoint_refuses_unusable_requests(base_url, script, body):
    status, answer = raw_post(base_url, body)

    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    assert script.embedding_requests == []


def test_chat_and_embeddings_are_scripted_apart(base_url, script):
    script.add(Reply.text("for the chat"))

    raw_post(base_url, {"model": "m", "input": "x", "dimensions": 2})

    assert (script.pending, len(script.embedding_requests), script.requests) == (1, 1, [])
    status, answer = raw_post(base_url, {"model": "m", "messages": []}, path="/chat/completions")
    assert (status, answer["choices"][0]["message"]["content"]) == (200, "for the chat")
    assert raw_post(base_url, {"input": "x"}, path="/nowhere")[0] == 404
