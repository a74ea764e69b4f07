"""A scripted OpenAI-compatible chat and embeddings server, standard library only: for the test suite and
load tests.

It speaks the part of the OpenAI API Alfred uses, over real HTTP, so the real clients (`openai`,
langchain-openai's `ChatOpenAI`, `knowledge.embeddings.OpenAIEmbedder`) run unchanged against it:

- `POST /v1/chat/completions`, plain or with `stream: true` (server-sent events: text as
  `choices[0].delta.content`, tool calls as `delta.tool_calls` whose `function.arguments` arrive in
  pieces, a last chunk carrying `usage` when `stream_options.include_usage` is set, then `data: [DONE]`);
- `POST /v1/embeddings`: one vector per input (a string or a list of them), of `dimensions` numbers when
  the request asks for a size, else `Script.embedding_dimensions` (1536, as text-embedding-3-small); as
  JSON numbers, or base64 float32 when `encoding_format` is `base64` (what the openai client asks for);
- `GET /v1/models`.

What it answers is scripted by a `Script`: a queue of replies (`Reply.text(...)`, `Reply.tool(...)`,
`Reply.error(...)`), then a responder function `(request_json) -> Reply`, then a default reply:

- a request with `tools` gets a call to the tool named by `tool_choice` (else the first tool), with
  arguments from `Script.tool_arguments(name, parameters_schema)`; the default, `minimal_arguments`,
  fills each *required* field of the JSON schema with its default, else its first enum value (or
  const), else the smallest value of its type (`""`, the minimum or 0, `false`, `[]`, a minimal object).
  For Alfred's triage tool that is `{"intent": "calendar_access", "confidence": 0.0}`;
- any other request gets a text of `Script.tokens` tokens ("Scripted reply token3 token4 ...").

Embeddings are scripted apart from chat, by a queue of their own (`Script.add_embeddings(...)` with
`Reply.embeddings(vectors)` or `Reply.error(...)`), then `Script.embed(text, dimensions)`; the default,
`hash_embedding`, derives the numbers from a SHA-256 of the text: the same text always gets the same
vector, different texts unrelated ones. They are not unit-length (clients normalize).

The script also sets a delay before the first byte of each response and a delay between streamed
chunks, and it records every request body received (`Script.requests` for chat,
`Script.embedding_requests` for embeddings), so tests assert on exactly what was sent to the model.
Token counts are scripted too: completion tokens are the number of streamed pieces; prompt tokens are a
rough estimate (characters of the messages and tools / 4) unless a reply says otherwise.

    script = Script([Reply.tool("IntentResult", {"intent": "knowledge", "confidence": 0.9})])
    with ScriptedLLMServer(script) as base_url:  # http://127.0.0.1:<free port>
        ...  # ChatOpenAI(base_url=base_url + "/v1", ...)
    assert script.requests[0]["model"] == "gpt-4o-mini"

    script = Script(embed=lambda text, dimensions: [1.0] * dimensions)  # or script.add_embeddings(Reply.error())
    with ScriptedLLMServer(script) as base_url:
        ...  # OpenAIEmbedder(base_url=base_url + "/v1", ...)
    assert script.embedding_requests[0]["dimensions"] == 384

From a shell (manual runs, load tests), serving default replies until interrupted:

    python -m agents.scripted_llm --port 8011 --delay-ms 200 --tokens 40 \
        --tool-args '{"IntentResult": {"intent": "knowledge", "confidence": 0.9}}'
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ToolArguments = Callable[[str, dict], dict]  # (tool name, JSON schema of its parameters) -> arguments
Embed = Callable[[str, int], list[float]]  # (input text, dimensions) -> vector


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a text, a tool call, embedding vectors, or an HTTP error.

    `arguments` may be a dict (sent as JSON) or a raw string (sent as is, to script invalid JSON).
    `delay` overrides the script's delay before the first byte for this reply only.
    `prompt_tokens` / `completion_tokens` override the counted usage.
    """

    content: str | None = None
    tool_name: str | None = None
    arguments: dict | str | None = None
    status: int = 200
    error_message: str = ""
    retry_after_ms: int | None = None
    delay: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    vectors: list[list[float]] | None = None

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> Reply:
        return cls(content=content, **kwargs)

    @classmethod
    def tool(cls, name: str, arguments: dict | str, **kwargs: Any) -> Reply:
        return cls(tool_name=name, arguments=arguments, **kwargs)

    @classmethod
    def embeddings(cls, vectors: list[list[float]], **kwargs: Any) -> Reply:
        """The vectors of an embeddings answer, as given (any count, any size: to script a broken endpoint)."""
        return cls(vectors=[list(vector) for vector in vectors], **kwargs)

    @classmethod
    def error(
        cls, status: int = 500, message: str = "scripted error", *, retry_after_ms: int | None = None, **kwargs: Any
    ) -> Reply:
        """An HTTP error in OpenAI's error format. `retry_after_ms` sends a `retry-after-ms` header, which
        the openai client honours instead of its exponential backoff (0.5 s, 1 s, ...): keeps tests fast."""
        return cls(status=status, error_message=message, retry_after_ms=retry_after_ms, **kwargs)

    @property
    def is_error(self) -> bool:
        return self.status >= 400


# --- Default tool arguments from a JSON schema --------------------------------------------------------


def minimal_arguments(name: str, schema: dict) -> dict:
    """Minimal valid arguments for a tool's parameters schema: every required field, nothing else."""
    value = _minimal_value(schema, schema.get("$defs") or schema.get("definitions") or {})
    return value if isinstance(value, dict) else {}


def _minimal_value(schema: dict, defs: dict, depth: int = 0) -> Any:
    if depth > 20:
        return None
    if "$ref" in schema:
        target = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return _minimal_value({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs, depth + 1)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            return _minimal_value(branches[0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        return {key: _minimal_value(properties.get(key, {}), defs, depth + 1) for key in schema.get("required", [])}
    if kind == "array":
        item = _minimal_value(schema.get("items", {}), defs, depth + 1)
        return [item] * int(schema.get("minItems", 0))
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        if "exclusiveMinimum" in schema and "minimum" not in schema:
            low += 1 if kind == "integer" else 1e-6
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    return None


def hash_embedding(text: str, dimensions: int) -> list[float]:
    """A vector of numbers in [-1, 1) derived from SHA-256 of the text: deterministic, not unit-length."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend((byte - 128) / 128 for byte in digest)
        block += 1
    return values[:dimensions]


# --- The script -----------------------------------------------------------------------------------------


class Script:
    """What the server answers, how fast, and what it received. Thread-safe.

    replies: answered first, in order (each used once).
    responder: then called with the request's JSON body; returns a `Reply`, or None for the default.
    delay: seconds before the first byte of every response (unless a reply sets its own).
    token_delay: seconds between two streamed chunks.
    tokens: length of the default text reply.
    tool_arguments: arguments of the default tool call, `(name, parameters_schema) -> dict`.
    embedding_replies: answered first to embeddings requests, in order (each used once).
    embed: then the vector of each input, `(text, dimensions) -> list[float]`.
    embedding_dimensions: the vector size when an embeddings request does not ask for one.
    record: keep request bodies in `requests` and `embedding_requests` (turn off for long load tests).
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        responder: Callable[[dict], Reply | None] | None = None,
        delay: float = 0.0,
        token_delay: float = 0.0,
        tokens: int = 20,
        tool_arguments: ToolArguments = minimal_arguments,
        embedding_replies: Iterable[Reply] = (),
        embed: Embed = hash_embedding,
        embedding_dimensions: int = 1536,
        record: bool = True,
    ) -> None:
        self.responder = responder
        self.embed = embed
        self.embedding_dimensions = embedding_dimensions
        self.delay = delay
        self.token_delay = token_delay
        self.tokens = tokens
        self.tool_arguments = tool_arguments
        self.record = record
        self._queue: deque[Reply] = deque(replies)
        self._requests: list[dict] = []
        self._embedding_queue: deque[Reply] = deque(embedding_replies)
        self._embedding_requests: list[dict] = []
        self._lock = threading.Lock()

    def add(self, *replies: Reply) -> Script:
        with self._lock:
            self._queue.extend(replies)
        return self

    def add_embeddings(self, *replies: Reply) -> Script:
        with self._lock:
            self._embedding_queue.extend(replies)
        return self

    @property
    def embedding_requests(self) -> list[dict]:
        """The JSON bodies of the embeddings requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._embedding_requests)

    @property
    def requests(self) -> list[dict]:
        """The JSON bodies of the chat-completion requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Queued replies not used yet."""
        with self._lock:
            return len(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._embedding_requests.clear()
            self._embedding_queue.clear()

    def reply_for(self, request: dict) -> Reply:
        """Record the request and pick its reply: the queue, then the responder, then the default."""
        with self._lock:
            if self.record:
                self._requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            reply = self.responder(request)
            if reply is not None:
                return reply
        return self.default_reply(request)

    def embedding_reply_for(self, request: dict, inputs: list[str]) -> Reply:
        """Record the request and pick its reply: the embeddings queue, else `embed` for each input."""
        with self._lock:
            if self.record:
                self._embedding_requests.append(request)
            if self._embedding_queue:
                return self._embedding_queue.popleft()
        dimensions = request.get("dimensions") or self.embedding_dimensions
        return Reply.embeddings([self.embed(text, dimensions) for text in inputs])

    def default_reply(self, request: dict) -> Reply:
        tools = [t for t in request.get("tools") or [] if t.get("type", "function") == "function"]
        if tools:
            wanted = request.get("tool_choice")
            name = wanted.get("function", {}).get("name") if isinstance(wanted, dict) else None
            tool = next((t for t in tools if t["function"]["name"] == name), tools[0])["function"]
            return Reply.tool(tool["name"], self.tool_arguments(tool["name"], tool.get("parameters") or {}))
        return Reply.text(long_text(self.tokens))


def long_text(tokens: int) -> str:
    """A text of exactly `tokens` whitespace-separated tokens."""
    words = ["Scripted", "reply"] + [f"token{i}" for i in range(3, tokens + 1)]
    return " ".join(words[: max(tokens, 0)])


def _pieces(text: str) -> list[str]:
    """Split a text into stream pieces ("tokens"): each word with the spaces before it."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _argument_pieces(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def _embedding_inputs(request: dict) -> list[str] | None:
    """The texts of an embeddings request (token arrays as their JSON), or None when it is unusable."""
    value = request.get("input")
    items = [value] if isinstance(value, str) or _is_tokens(value) else value
    if not isinstance(items, list) or not items:
        return None
    if not all(isinstance(item, str) or _is_tokens(item) for item in items):
        return None
    dimensions = request.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        return None
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def _is_tokens(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(token, int) for token in value)


def _embeddings_response(request: dict, inputs: list[str], reply: Reply) -> dict:
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, vector in enumerate(reply.vectors or []):
        encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = reply.prompt_tokens if reply.prompt_tokens is not None else sum(max(1, len(t) // 4) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": request.get("model", "scripted"), "usage": usage}


def _estimate_prompt_tokens(request: dict) -> int:
    sent = json.dumps([request.get("messages", []), request.get("tools", [])], ensure_ascii=False)
    return max(1, len(sent) // 4)


# --- The HTTP side --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients pool connections as with a real endpoint
    disable_nagle_algorithm = True  # else headers and body in two writes meet delayed ACKs: +40 ms a request
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and load tests print what matters themselves

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    # -- routing

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "alfred-scripted-llm"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error_json(404, f"no route for GET {self.path}", "not_found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.rstrip("/")
        if not path.endswith(("/chat/completions", "/embeddings")):
            self._send_error_json(404, f"no route for POST {self.path}", "not_found")
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self._send_error_json(400, "the body must be a JSON object", "invalid_request_error")
            return
        script = self.server.script
        inputs = _embedding_inputs(request) if path.endswith("/embeddings") else None
        if path.endswith("/embeddings") and inputs is None:
            message = "input must be a non-empty string or list of strings, dimensions a positive integer"
            self._send_error_json(400, message, "invalid_request_error")
            return
        reply = script.reply_for(request) if inputs is None else script.embedding_reply_for(request, inputs)
        delay = script.delay if reply.delay is None else reply.delay
        if delay > 0 and self.server.stopping.wait(delay):
            self.close_connection = True
            return
        try:
            if reply.is_error:
                headers = {"retry-after-ms": str(reply.retry_after_ms)} if reply.retry_after_ms is not None else {}
                kind = "rate_limit_error" if reply.status == 429 else "server_error"
                self._send_error_json(reply.status, reply.error_message or "scripted error", kind, headers)
            elif inputs is not None:
                self._send_json(200, _embeddings_response(request, inputs, reply))
            elif request.get("stream"):
                self._stream(request, reply)
            else:
                self._send_json(200, _completion(request, reply))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout): nothing to answer

    # -- responses

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error_json(self, status: int, message: str, kind: str, headers: dict | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers)

    def _stream(self, request: dict, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        token_delay = self.server.script.token_delay
        for index, chunk in enumerate(_chunks(request, reply)):
            if index and token_delay > 0 and self.server.stopping.wait(token_delay):
                self.close_connection = True
                return
            self._write_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _ids() -> tuple[str, int]:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())


def _usage(request: dict, reply: Reply, pieces: int) -> dict:
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _estimate_prompt_tokens(request)
    completion = reply.completion_tokens if reply.completion_tokens is not None else pieces
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _arguments_text(reply: Reply) -> str:
    return reply.arguments if isinstance(reply.arguments, str) else json.dumps(reply.arguments or {})


def _completion(request: dict, reply: Reply) -> dict:
    completion_id, created = _ids()
    if reply.tool_name is not None:
        arguments = _arguments_text(reply)
        call = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function"}
        call["function"] = {"name": reply.tool_name, "arguments": arguments}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish, pieces = "tool_calls", len(_argument_pieces(arguments))
    else:
        message = {"role": "assistant", "content": reply.content or ""}
        finish, pieces = "stop", len(_pieces(reply.content or ""))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": request.get("model", "scripted"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _usage(request, reply, pieces),
    }


def _chunks(request: dict, reply: Reply) -> Iterator[dict]:
    completion_id, created = _ids()
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created}
    base["model"] = request.get("model", "scripted")

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    if reply.tool_name is not None:
        pieces = _argument_pieces(_arguments_text(reply))
        call = {"index": 0, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function"}
        call["function"] = {"name": reply.tool_name, "arguments": ""}
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        for piece in pieces:
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        finish = "tool_calls"
    else:
        pieces = _pieces(reply.content or "")
        yield chunk({"role": "assistant", "content": ""})
        for piece in pieces:
            yield chunk({"content": piece})
        finish = "stop"
    yield chunk({}, finish)
    if (request.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(request, reply, len(pieces))}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default listen backlog (5) resets connections when many clients connect at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], script: Script) -> None:
        self.script = script
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (their timeout, the end of a test) are normal here: not worth a traceback."""
        if self.stopping.is_set() or isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """End kept-alive connections and delayed answers, so handler threads finish now."""
        self.stopping.set()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class ScriptedLLMServer:
    """The scripted server in a background thread. `start()` returns its base URL (without `/v1`).

    Port 0 picks a free port. Also a context manager: `with ScriptedLLMServer(script) as base_url: ...`.
    """

    def __init__(self, script: Script | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script = script or Script()
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the scripted LLM server is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[dict]:
        return self.script.requests

    def start(self) -> str:
        if self._server is None:
            self._server = _Server((self.host, self.port), self.script)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-llm", daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- Command line ---------------------------------------------------------------------------------------


def _tool_arguments_with(overrides: dict[str, dict]) -> ToolArguments:
    def tool_arguments(name: str, schema: dict) -> dict:
        return {**minimal_arguments(name, schema), **overrides.get(name, {})}

    return tool_arguments


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m agents.scripted_llm",
        description="Serve scripted OpenAI-compatible chat completions: a text of --tokens tokens, or, when the "
        "request has tools, a call to the tool_choice (else first) tool with minimal valid arguments; and "
        "embeddings derived from a hash of each input.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--delay-ms", type=float, default=0, help="before the first byte of each response")
    parser.add_argument("--token-delay-ms", type=float, default=0, help="between two streamed chunks")
    parser.add_argument("--tokens", type=int, default=20, help="length of the text reply")
    parser.add_argument(
        "--embedding-dimensions", type=int, default=1536, help="vector size when a request asks for none"
    )
    parser.add_argument(
        "--tool-args",
        default="{}",
        help='JSON, per tool name, merged over the minimal arguments: \'{"IntentResult": {"intent": "knowledge"}}\'',
    )
    args = parser.parse_args(argv)
    overrides = json.loads(args.tool_args)
    if not isinstance(overrides, dict):
        parser.error("--tool-args must be a JSON object of tool name -> arguments")
    script = Script(
        delay=args.delay_ms / 1000,
        token_delay=args.token_delay_ms / 1000,
        tokens=args.tokens,
        tool_arguments=_tool_arguments_with(overrides),
        embedding_dimensions=args.embedding_dimensions,
        record=False,
    )
    server = ScriptedLLMServer(script, host=args.host, port=args.port)
    print(f"Scripted LLM on {server.start()}/v1 (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
