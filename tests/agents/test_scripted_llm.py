"""The scripted OpenAI-compatible server, over real HTTP: with the openai client and as raw server-sent events."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from agents.scripted_llm import Reply, Script, ScriptedLLMServer, long_text, minimal_arguments

USER = [{"role": "user", "content": "Hello"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "pick",
        "parameters": {
            "type": "object",
            "properties": {"kind": {"enum": ["a", "b"]}, "n": {"type": "integer", "minimum": 3}},
            "required": ["kind", "n"],
        },
    },
}


@pytest.fixture
def script():
    return Script()


@pytest.fixture
def client(script):
    with ScriptedLLMServer(script) as base_url:
        yield openai.OpenAI(base_url=base_url + "/v1", api_key="test", max_retries=0, timeout=5)


def raw_post(base_url: str, body: object, path: str = "/v1/chat/completions") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def sse_events(data: bytes) -> list:
    events = [line.removeprefix(b"data: ") for line in data.split(b"\n\n") if line]
    assert all(line.startswith(b"data: ") for line in data.split(b"\n\n") if line)
    return [e.decode() if e == b"[DONE]" else json.loads(e) for e in events]


def test_models_list(client):
    assert [m.id for m in client.models.list().data] == ["scripted"]


def test_text_reply_with_usage_and_the_request_recorded(client, script):
    script.add(Reply.text("Hello there", prompt_tokens=12))
    response = client.chat.completions.create(model="some-model", messages=USER, temperature=0)
    assert response.choices[0].message.content == "Hello there"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "some-model"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (12, 2, 14)
    assert script.requests == [{"model": "some-model", "messages": USER, "temperature": 0}]


def test_tool_call_reply(client, script):
    script.add(Reply.tool("pick", {"kind": "b", "n": 4}))
    response = client.chat.completions.create(model="m", messages=USER, tools=[TOOL])
    (call,) = response.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("pick", {"kind": "b", "n": 4})
    assert response.choices[0].finish_reason == "tool_calls"


def test_streamed_text_as_raw_server_sent_events(script):
    script.add(Reply.text("one two three", completion_tokens=9))
    with ScriptedLLMServer(script) as base_url:
        body = {"model": "m", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
        status, headers, data = raw_post(base_url, body)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse_events(data)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [e["choices"][0]["delta"].get("content") for e in events[1:4]] == ["one", " two", " three"]
    assert events[4]["choices"][0]["finish_reason"] == "stop"
    assert events[5]["choices"] == [] and events[5]["usage"]["completion_tokens"] == 9
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])


def test_no_usage_chunk_unless_asked(script):
    script.add(Reply.text("one two"))
    with ScriptedLLMServer(script) as base_url:
        _, _, data = raw_post(base_url, {"model": "m", "messages": USER, "stream": True})
    assert not any("usage" in e for e in sse_events(data)[:-1])


def test_streamed_tool_call_assembled_by_the_openai_client(client, script):
    arguments = {"kind": "a", "n": 12345678, "note": "long enough to come in several pieces"}
    script.add(Reply.tool("pick", arguments))
    stream = client.chat.completions.create(
        model="m", messages=USER, tools=[TOOL], stream=True, stream_options={"include_usage": True}
    )
    name, pieces, usage = None, [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = name or call.function.name
            pieces.append(call.function.arguments or "")
    assert name == "pick"
    assert len([p for p in pieces if p]) > 3
    assert json.loads("".join(pieces)) == arguments
    assert usage.completion_tokens == len([p for p in pieces if p])


def test_default_replies(client, script):
    script.tokens = 7
    text = client.chat.completions.create(model="m", messages=USER).choices[0].message.content
    assert text == long_text(7) and len(text.split()) == 7
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}
    response = client.chat.completions.create(
        model="m", messages=USER, tools=[other, TOOL], tool_choice={"type": "function", "function": {"name": "pick"}}
    )
    (call,) = response.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("pick", {"kind": "a", "n": 3})


def test_minimal_arguments_follow_the_schema():
    schema = {
        "type": "object",
        "$defs": {"Level": {"enum": ["view", "book"], "type": "string"}},
        "properties": {
            "level": {"$ref": "#/$defs/Level"},
            "language": {"default": "fr", "enum": ["en", "fr"]},
            "score": {"type": "number", "minimum": 0.5},
            "who": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 2}]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "ok": {"type": "boolean"},
            "inner": {"type": "object", "properties": {"x": {"const": 1}}, "required": ["x"]},
            "optional": {"type": "string"},
        },
        "required": ["level", "language", "score", "who", "tags", "ok", "inner"],
    }
    assert minimal_arguments("t", schema) == {
        "level": "view",
        "language": "fr",
        "score": 0.5,
        "who": "xx",
        "tags": [],
        "ok": False,
        "inner": {"x": 1},
    }


def test_responder_sees_the_request(client, script):
    script.responder = lambda request: Reply.text(f"you said {request['messages'][-1]['content']}")
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "you said Hello"


@pytest.mark.parametrize(("status", "error"), [(500, openai.InternalServerError), (429, openai.RateLimitError)])
def test_scripted_http_errors(client, script, status, error):
    script.add(Reply.error(status, "scripted failure", retry_after_ms=5), Reply.text("recovered"))
    with pytest.raises(error, match="scripted failure") as raised:
        client.chat.completions.create(model="m", messages=USER)
    assert raised.value.response.headers["retry-after-ms"] == "5"
    assert client.with_options(max_retries=1).chat.completions.create(model="m", messages=USER).choices[0].message
    assert len(script.requests) == 2


def test_bad_requests(script):
    with ScriptedLLMServer(script) as base_url:
        status, _, data = raw_post(base_url, ["not", "an", "object"])
        assert status == 400 and json.loads(data)["error"]["type"] == "invalid_request_error"
        assert raw_post(base_url, {}, path="/v1/nowhere")[0] == 404
    assert script.requests == []


def test_delays(client, script):
    script.delay, script.token_delay = 0.2, 0.05
    script.add(Reply.text("a b c d"), Reply.text("fast", delay=0))
    start = time.monotonic()
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    first = next(iter(stream))
    assert 0.2 <= time.monotonic() - start < 1
    assert first.choices[0].delta.role == "assistant"
    list(stream)
    assert time.monotonic() - start >= 0.2 + 4 * 0.05
    start = time.monotonic()
    client.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - start < 0.2  # its own delay (0), not the script's


def test_concurrent_requests_are_all_recorded(client, script):
    script.delay = 0.5
    answers = []

    def ask(i):
        message = client.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
        answers.append(message.choices[0].message.content)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 5  # served in parallel, not 20 x 0.5 s
    assert len(answers) == 20
    assert sorted(int(r["messages"][0]["content"]) for r in script.requests) == list(range(20))


def test_stop_does_not_wait_for_delayed_answers():
    server = ScriptedLLMServer(Script(delay=30))
    base_url = server.start()
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="test", max_retries=0, timeout=10)
    errors = []
    caller = threading.Thread(target=lambda: errors.append(_call_and_catch(client)))
    caller.start()
    while not server.requests:
        time.sleep(0.01)
    start = time.monotonic()
    server.stop()
    caller.join(5)
    assert time.monotonic() - start < 2
    assert isinstance(errors[0], openai.APIConnectionError)


def _call_and_catch(client):
    try:
        client.chat.completions.create(model="m", messages=USER)
    except openai.APIError as error:
        return error
    return None


def test_command_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.scripted_llm", "--port", str(port), "--tokens", "4", "--delay-ms", "10"]
        + ["--tool-args", json.dumps({"pick": {"kind": "b"}})],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout.readline().strip() == f"Scripted LLM on http://127.0.0.1:{port}/v1 (Ctrl-C to stop)"
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="test", max_retries=0, timeout=5)
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == long_text(4)
        (call,) = client.chat.completions.create(model="m", messages=USER, tools=[TOOL]).choices[0].message.tool_calls
        assert json.loads(call.function.arguments) == {"kind": "b", "n": 3}
    finally:
        process.terminate()
        process.wait(5)
