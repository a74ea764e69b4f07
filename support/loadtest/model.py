"""The scripted model of a load test, and its ledger: how many calls each turn made and how long the
script made them last (the delays it applied), so the report can subtract the model's own time.

Every load-test message carries a marker (`[lt:<client id>]`); the model sees it in the person's text
(triage and the streamed reply both send it), which attributes each call to its turn.

The turn: triage answers intent "other" (a tool call), so the graph goes to `refuse`, which streams a
reply of `tokens` tokens from the model. Two model calls, the second one streamed token by token: the
path with the most model traffic and the most frames per turn, and one that needs no platform API data
and leaves nothing pending, so a connection can send its next message into the same conversation.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict

from agents.scripted_llm import Reply, Script, ScriptedLLMServer, _chunks

MARKER = re.compile(r"\[lt:([A-Za-z0-9_-]{8,64})\]")
TRIAGE_TOOL = "IntentResult"
# Out of scope: triage says "other", the graph refuses with a reply streamed by the model.
TRIAGE_ARGUMENTS = {"intent": "other", "confidence": 0.9, "language": "en", "reason": "load test"}


def marked(text: str, client_id: str) -> str:
    return f"{text} [lt:{client_id}]"


def _last_user_text(request: dict) -> str:
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return content or ""
    return ""


class ModelLedger:
    """The `Script` of the scripted server (`record=False`), and per turn: calls and scripted seconds."""

    def __init__(self, *, delay: float, token_delay: float, tokens: int) -> None:
        self.delay = delay
        self.token_delay = token_delay
        self.script = Script(responder=self._respond, delay=delay, token_delay=token_delay, tokens=tokens, record=False)
        self._lock = threading.Lock()
        self._calls: dict[str, int] = defaultdict(int)
        self._seconds: dict[str, float] = defaultdict(float)
        self.unmarked_calls = 0
        self.calls_total = 0

    def _respond(self, request: dict) -> Reply:
        names = [(tool.get("function") or {}).get("name") for tool in request.get("tools") or []]
        if TRIAGE_TOOL in names:
            reply = Reply.tool(TRIAGE_TOOL, TRIAGE_ARGUMENTS)
        else:
            reply = self.script.default_reply(request)
        seconds = self.delay
        if request.get("stream") and self.token_delay > 0:
            # The server waits token_delay before every chunk but the first (agents/scripted_llm.py, _stream).
            seconds += self.token_delay * (len(list(_chunks(request, reply))) - 1)
        found = MARKER.search(_last_user_text(request))
        with self._lock:
            self.calls_total += 1
            if found is None:
                self.unmarked_calls += 1
            else:
                self._calls[found.group(1)] += 1
                self._seconds[found.group(1)] += seconds
        return reply

    def turn(self, client_id: str) -> tuple[int, float]:
        """(model calls, scripted seconds) of the turn of this client message id."""
        with self._lock:
            return self._calls.get(client_id, 0), self._seconds.get(client_id, 0.0)


class LoadTestLLMServer(ScriptedLLMServer):
    """The scripted server with a listen backlog sized for a load test. socketserver's default queue (5)
    overflows when many model clients connect at once (Alfred at HEAD opens new connections for every
    turn); the kernel then drops the SYN and the client retries after a second: a stall that would be
    blamed on Alfred."""

    backlog = 512

    def start(self) -> str:
        url = super().start()
        self._server.socket.listen(self.backlog)  # listening again only resizes the accept queue
        return url
