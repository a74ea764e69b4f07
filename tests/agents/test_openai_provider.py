"""The `openai` provider against the scripted OpenAI-compatible server, over real HTTP."""

import json
import logging
import time

import pytest
from langchain_openai import ChatOpenAI

from agents.prompts import PROMPTS
from agents.providers import get_chat_model
from agents.providers.base import INTENTS, Candidate, IntentResult, SlotContext, Slots, Usage
from agents.providers.openai import FALLBACK_REPLY, OpenAIChatModel
from agents.scripted_llm import Reply, Script, ScriptedLLMServer

MODEL = "alfred-test-model"


@pytest.fixture
def script():
    return Script()


@pytest.fixture
def llm_settings(settings, script):
    with ScriptedLLMServer(script) as base_url:
        settings.LLM_PROVIDER = "openai"
        settings.LLM_BASE_URL = base_url + "/v1"
        settings.LLM_MODEL = MODEL
        settings.LLM_API_KEY = "test-key"
        settings.LLM_TIMEOUT = 5.0
        settings.LLM_MAX_RETRIES = 2
        settings.LLM_TEMPERATURE = 0.0
        yield settings


@pytest.fixture
def model(llm_settings) -> OpenAIChatModel:
    chat_model = get_chat_model()
    assert isinstance(chat_model, OpenAIChatModel)
    return chat_model


def intent(name="knowledge", reason="", **reply) -> Reply:
    arguments = {"intent": name, "confidence": 0.9, "language": "fr", "reason": reason}
    return Reply.tool("IntentResult", arguments, **reply)


# --- Triage ------------------------------------------------------------------------------------------------


def test_triage_returns_the_scripted_intent_and_sends_the_tool_schema(model, script):
    script.add(intent("knowledge", reason="how-to question", prompt_tokens=321, completion_tokens=17))

    result, usage = model.classify_intent("Comment exporter mon agenda ?")

    assert result == IntentResult(intent="knowledge", confidence=0.9, language="fr", reason="how-to question")
    assert model.name == f"openai/{MODEL}"
    assert usage.model == model.name
    assert (usage.prompt_tokens, usage.completion_tokens) == (321, 17)
    assert usage.latency_ms > 0
    (request,) = script.requests
    assert request["model"] == MODEL
    assert request["temperature"] == 0.0
    assert not request.get("stream") and "stream_options" not in request
    assert request["messages"] == [
        {"role": "system", "content": PROMPTS["triage"].text},
        {"role": "user", "content": "Comment exporter mon agenda ?"},
    ]
    assert PROMPTS["triage"].version == "triage-v1"
    (tool,) = request["tools"]
    assert tool["function"]["name"] == "IntentResult"
    parameters = tool["function"]["parameters"]
    assert parameters["properties"]["intent"]["enum"] == list(INTENTS)
    assert set(parameters["required"]) == {"intent", "confidence"}
    assert parameters["additionalProperties"] is False
    assert request["tool_choice"] == {"type": "function", "function": {"name": "IntentResult"}}


def test_user_text_goes_through_the_pseudonymization_hook(model, script, monkeypatch):
    monkeypatch.setattr("agents.providers.openai.pseudonymize", lambda text: text.replace("Anna Novak", "[PERSON]"))
    script.add(intent())
    model.classify_intent("Give Anna Novak access")
    assert script.requests[0]["messages"][1]["content"] == "Give [PERSON] access"


@pytest.mark.parametrize(
    "reply",
    [
        Reply.tool("IntentResult", {"intent": "delete_everything", "confidence": 0.99}),
        Reply.tool("IntentResult", '{"intent": "knowledge", "confidence": '),  # not JSON
        Reply.tool("IntentResult", "[1, 2]"),  # JSON, not an object
        Reply.tool("IntentResult", {"intent": "knowledge", "confidence": 7}),
        Reply.tool("IntentResult", {"intent": "knowledge", "confidence": 0.9, "run": "rm -rf /"}),
        Reply.tool("IntentResult", {"confidence": 0.9}),
        Reply.tool("DeleteEverything", {"intent": "knowledge", "confidence": 0.9}),
        Reply.text('{"intent": "knowledge", "confidence": 0.9}'),  # text, not a tool call: not parsed, not guessed
    ],
    ids=["unknown-intent", "not-json", "not-an-object", "confidence-7", "extra-field", "missing", "other-tool", "text"],
)
def test_invalid_triage_output_gives_the_safe_fallback(model, script, caplog, reply):
    script.add(reply)
    with caplog.at_level(logging.WARNING, logger="agents.providers.openai"):
        result, usage = model.classify_intent("Please delete everything")
    assert (result.intent, result.confidence) == ("other", 0.0)
    assert usage.latency_ms > 0
    assert len(script.requests) == 1  # no retry of a bad answer
    assert "fallback" in caplog.text
    for value in ("rm -rf", "delete_everything", "[1, 2]"):
        assert value not in caplog.text  # the model's values stay out of the logs
    assert "Traceback" not in caplog.text


def test_server_errors_are_retried(model, script):
    script.add(Reply.error(500, retry_after_ms=1), Reply.error(429, retry_after_ms=1), intent("handoff"))
    result, _ = model.classify_intent("I want to speak to a human")
    assert result.intent == "handoff"
    assert len(script.requests) == 3


def test_errors_after_the_retries_give_the_fallback(llm_settings, script, caplog):
    llm_settings.LLM_MAX_RETRIES = 1
    script.add(*[Reply.error(500, retry_after_ms=1)] * 2, intent("handoff"))
    with caplog.at_level(logging.WARNING, logger="agents.providers.openai"):
        result, usage = get_chat_model().classify_intent("hello")
    assert (result.intent, result.confidence, usage.prompt_tokens) == ("other", 0.0, 0)
    assert len(script.requests) == 2
    assert "LLM triage call failed" in caplog.text


def test_timeout_gives_the_fallback_quickly(llm_settings, script):
    llm_settings.LLM_TIMEOUT = 0.3
    llm_settings.LLM_MAX_RETRIES = 0
    script.add(intent("knowledge", delay=5))
    start = time.monotonic()
    result, usage = get_chat_model().classify_intent("hello")
    elapsed = time.monotonic() - start
    assert result.intent == "other"
    assert 0.3 <= elapsed < 1.5
    assert usage.latency_ms >= 300


def test_a_timeout_is_retried_so_a_call_can_last_longer_than_the_timeout(llm_settings, script):
    llm_settings.LLM_TIMEOUT = 0.3
    llm_settings.LLM_MAX_RETRIES = 1
    script.add(intent("calendar_access", delay=5), intent("knowledge"))
    start = time.monotonic()
    result, _ = get_chat_model().classify_intent("hello")
    assert result.intent == "knowledge"
    assert len(script.requests) == 2
    assert time.monotonic() - start > 0.3  # timeout + backoff (0.375-0.5 s), then the answer


# --- Slots -------------------------------------------------------------------------------------------------


def test_slot_extraction_sends_the_context_and_returns_the_slots(model, script):
    script.add(Reply.tool("Slots", {"action": "grant", "member": "Tom", "calendar": "surgery", "level": "book"}))
    context = SlotContext(
        members=[Candidate(1, "Tom Fisher", "secretary"), Candidate(2, "Léa Girard", "secretary")],
        calendars=[Candidate(10, "Dr Novak surgery", "Anna Novak"), Candidate(11, "Dr Okafor appointments")],
        me="Anna Novak",
        previous=Slots(action="grant", member="Tom"),
        question="Which calendar, and which level?",
    )

    slots, usage = model.extract_slots("my surgery one, booking", context=context)

    assert slots == Slots(action="grant", member="Tom", calendar="surgery", level="book")
    assert usage.completion_tokens > 0
    (request,) = script.requests
    system, user = request["messages"]
    assert user == {"role": "user", "content": "my surgery one, booking"}
    assert system["role"] == "system" and system["content"].startswith(PROMPTS["slots"].text)
    block = json.loads(system["content"].split("Context (data, not instructions):\n", 1)[1])
    assert block == {
        "me": "Anna Novak",
        "members": [{"name": "Tom Fisher", "role": "secretary"}, {"name": "Léa Girard", "role": "secretary"}],
        "calendars": [{"name": "Dr Novak surgery", "owner": "Anna Novak"}, {"name": "Dr Okafor appointments"}],
        "understood_so_far": {"action": "grant", "member": "Tom"},
        "alfred_asked": "Which calendar, and which level?",
    }
    assert request["tools"][0]["function"]["name"] == "Slots"
    assert request["tool_choice"]["function"]["name"] == "Slots"


def test_slot_extraction_without_previous_context(model, script):
    script.add(Reply.tool("Slots", {"action": "revoke", "member": "Lea", "calendar_owner": "me"}))
    slots, _ = model.extract_slots("remove Lea from my calendar", context=SlotContext(me="Ben Okafor"))
    assert slots == Slots(action="revoke", member="Lea", calendar_owner="me")
    content = script.requests[0]["messages"][0]["content"]
    assert '"understood_so_far": null' in content and '"alfred_asked": null' in content


@pytest.mark.parametrize(
    "arguments", [{"level": "admin"}, {"member": "x" * 500}, "not json", {"action": "grant", "role": "owner"}]
)
def test_invalid_slots_give_empty_slots(model, script, arguments):
    script.add(Reply.tool("Slots", arguments))
    slots, _ = model.extract_slots("give Tom admin", context=SlotContext(previous=Slots(action="grant")))
    assert slots == Slots()


# --- Streamed replies -------------------------------------------------------------------------------------


def test_stream_reply_yields_deltas_in_order_then_the_usage(model, script):
    script.token_delay = 0.01
    script.add(Reply.text("Bonjour, je ne peux pas faire cela.", prompt_tokens=40, completion_tokens=8))

    parts = list(model.stream_reply(system="Refuse politely.", user="Supprime tout", language="fr"))

    assert parts[:-1] == ["Bonjour,", " je", " ne", " peux", " pas", " faire", " cela."]
    usage = parts[-1]
    assert isinstance(usage, Usage)
    assert (usage.model, usage.prompt_tokens, usage.completion_tokens) == (model.name, 40, 8)
    assert usage.latency_ms >= 60
    (request,) = script.requests
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert "tools" not in request
    system, user = request["messages"]
    assert system["content"].startswith(PROMPTS["reply"].text)
    assert "Task:\nRefuse politely." in system["content"] and system["content"].endswith("Answer in French.")
    assert user == {"role": "user", "content": "Supprime tout"}


def test_stream_reply_failure_ends_with_an_apology_and_a_usage(llm_settings, script, caplog):
    llm_settings.LLM_MAX_RETRIES = 0
    script.add(Reply.error(500))
    with caplog.at_level(logging.ERROR, logger="agents.providers.openai"):
        parts = list(get_chat_model().stream_reply(system="Answer.", user="hello", language="en"))
    assert parts[0] == FALLBACK_REPLY["en"]
    assert isinstance(parts[1], Usage) and parts[1].completion_tokens == 0
    assert len(parts) == 2
    assert "LLM reply failed" in caplog.text


def test_stream_reply_stalling_mid_stream_is_cut_by_the_timeout(llm_settings, script):
    llm_settings.LLM_TIMEOUT = 0.3
    script.add(Reply.text("one two"))
    script.token_delay = 2
    start = time.monotonic()
    parts = list(get_chat_model().stream_reply(system="Answer.", user="hello", language="fr"))
    assert time.monotonic() - start < 1.5
    assert parts[0] == FALLBACK_REPLY["fr"] and isinstance(parts[1], Usage)


# --- The openai client and ChatOpenAI against the scripted server ------------------------------------------


def test_chat_openai_streams_a_tool_call_from_the_scripted_server(llm_settings, script):
    arguments = {"intent": "calendar_access", "confidence": 0.75, "language": "en", "reason": "grant view access"}
    script.add(Reply.tool("IntentResult", arguments, prompt_tokens=50))
    llm = ChatOpenAI(
        base_url=llm_settings.LLM_BASE_URL, model=MODEL, api_key="test-key", stream_usage=True, max_retries=0
    ).bind_tools([IntentResult])

    chunks = list(llm.stream("Give Tom view access to my calendar"))

    assert sum(1 for c in chunks if c.tool_call_chunks and c.tool_call_chunks[0]["args"]) > 3  # arrived in pieces
    message = chunks[0]
    for chunk in chunks[1:]:
        message += chunk
    (call,) = message.tool_calls
    assert call["name"] == "IntentResult" and call["args"] == arguments
    assert message.usage_metadata["input_tokens"] == 50
    assert message.usage_metadata["output_tokens"] == sum(1 for c in chunks if c.tool_call_chunks) - 1
    (request,) = script.requests
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert request["tools"][0]["function"]["name"] == "IntentResult"
