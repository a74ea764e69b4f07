"""A real WebSocket client for the chat, logged in with a real session of the test database."""

import json
import uuid
from urllib.parse import urlsplit

from django.test import Client
from websockets.sync.client import connect


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class ChatSocket:
    def __init__(self, base_url: str, user=None, *, origin: str | None = None, cookie: str | None = None):
        host = urlsplit(base_url).netloc
        headers = {}
        if user is not None or cookie is not None:
            headers["Cookie"] = f"sessionid={cookie or session_cookie(user)}"
        self.ws = connect(
            f"ws://{host}/ws/chat/", additional_headers=headers, origin=origin or f"http://{host}", open_timeout=10
        ).__enter__()  # websockets 17 wants its connection entered; close() leaves it
        self.seen: list[dict] = []

    def send(self, frame) -> None:
        self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def say(self, text: str, conversation=None, client_id: str | None = None) -> dict:
        """Send a message and return its ack."""
        client_id = client_id or uuid.uuid4().hex
        self.send({"type": "message", "id": client_id, "conversation": conversation, "text": text})
        return self.until(lambda f: f["type"] in ("ack", "error") and f.get("id", f.get("ref")) == client_id)

    def recv(self, timeout: float = 10) -> dict:
        frame = json.loads(self.ws.recv(timeout=timeout))
        self.seen.append(frame)
        return frame

    def until(self, predicate, timeout: float = 30) -> dict:
        import time

        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(timeout=max(0.1, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    def close(self) -> None:
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_until_idle(timeout: float = 15) -> None:
    """Wait until no turn is queued or running and the workers hold no task (running, reserved or waiting
    to be retried), so that emptying the tables after a test never races a worker's last writes."""
    import time

    from agents.models import AgentRun
    from alfred.celery import app
    from support.models import Conversation, Message

    deadline = time.monotonic() + timeout
    while True:
        busy = (
            Conversation.objects.filter(run_status__in=("queued", "running")).exists()
            or Message.objects.filter(status="pending").exists()
            or AgentRun.objects.filter(status="running").exists()
        )
        if not busy:
            inspect = app.control.inspect(timeout=0.5)
            held = [inspect.active() or {}, inspect.reserved() or {}, inspect.scheduled() or {}]
            if not any(tasks for replies in held for tasks in replies.values()):
                return
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not finish its turns in time")
        time.sleep(0.05)
