"""The chat WebSocket through a real daphne process: authentication, origin, bad frames, idempotency, resume.

No worker runs here: these are about the socket and what it stores. The turns are tested with a worker in
tests/support/test_chat_turns.py.
"""

import json
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.models import ChatEvent, Conversation, Message
from tests.factories import MembershipFactory, UserFactory
from tests.support.chat_client import ChatSocket

pytestmark = pytest.mark.slow


@pytest.fixture
def member(transactional_db):
    user = UserFactory(username="nora", first_name="Nora", last_name="Klein")
    MembershipFactory(user=user, role="secretary")
    return user


def test_anonymous_socket_is_closed(asgi_server, transactional_db):
    with ChatSocket(asgi_server) as socket, pytest.raises(ConnectionClosed):
        socket.recv(timeout=5)
    assert socket.ws.close_code == 4401


def test_foreign_origin_is_refused(asgi_server, member):
    with pytest.raises(InvalidStatus) as refused:
        ChatSocket(asgi_server, member, origin="http://evil.example")
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json at all", "bad_json"),
        ("[1, 2]", "unknown_type"),
        (json.dumps({"type": "launch"}), "unknown_type"),
        (json.dumps({"type": "message", "id": "short", "text": "hi"}), "invalid"),
        (json.dumps({"type": "message", "id": "x" * 20, "text": "hi", "extra": 1}), "invalid"),
        (json.dumps({"type": "message", "id": "x" * 20, "text": "   "}), "empty_message"),
        (json.dumps({"type": "message", "id": "x" * 20, "conversation": 999999, "text": "hi"}), "not_found"),
        (json.dumps({"type": "message", "id": "x" * 20, "conversation": "1 OR 1=1", "text": "hi"}), "invalid"),
        (json.dumps({"type": "confirm", "proposal": 1, "hash": "0" * 64, "decision": "confirm"}), "not_found"),
        (json.dumps({"type": "confirm", "proposal": 1, "hash": "0" * 64, "decision": "maybe"}), "invalid"),
        (json.dumps({"type": "resume", "conversation": 999999, "after": 0}), "not_found"),
        (json.dumps({"type": "message", "id": "y" * 20, "text": "x" * 5000}), "too_long"),
        ("x" * 20000, "too_large"),
    ],
)
def test_bad_frames_get_an_error_and_the_socket_stays_open(asgi_server, member, frame, code):
    with ChatSocket(asgi_server, member) as socket:
        socket.send(frame)
        error = socket.recv()
        assert (error["type"], error["code"]) == ("error", code)
        assert error["detail"]

        ack = socket.say("Still here?")
        assert ack["type"] == "ack"
    assert Message.objects.filter(text="Still here?").count() == 1


def test_someone_elses_conversation_is_not_found(asgi_server, member):
    other = UserFactory(username="otto")
    MembershipFactory(user=other)
    with ChatSocket(asgi_server, other) as socket:
        conversation = socket.say("Hello")["conversation"]
    with ChatSocket(asgi_server, member) as socket:
        socket.send({"type": "resume", "conversation": conversation, "after": 0})
        assert socket.recv()["code"] == "not_found"
        assert socket.say("Hijack", conversation=conversation)["code"] == "not_found"
    assert not Message.objects.filter(text="Hijack").exists()


def test_a_message_is_stored_once_per_client_id(asgi_server, member):
    client_id = uuid.uuid4().hex
    with ChatSocket(asgi_server, member) as socket:
        first = socket.say("Give Tom view access", client_id=client_id)
        again = socket.say("Give Tom view access", conversation=first["conversation"], client_id=client_id)

    assert first["created"] is True and again["created"] is False
    assert first["message"]["id"] == again["message"]["id"]
    assert Message.objects.filter(client_id=client_id).count() == 1
    conversation = Conversation.objects.get(pk=first["conversation"])
    assert conversation.user == member and conversation.title == "Give Tom view access"
    assert conversation.run_status == "queued"


def test_resume_replays_stored_events_after_the_last_seen(asgi_server, member):
    with ChatSocket(asgi_server, member) as socket:
        conversation = socket.say("First")["conversation"]
        socket.say("Second", conversation=conversation)
    stored = list(ChatEvent.objects.filter(conversation_id=conversation).values_list("seq", "type"))
    assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))

    with ChatSocket(asgi_server, member) as socket:
        socket.send({"type": "resume", "conversation": conversation, "after": 2})
        frames = []
        while (frame := socket.recv())["type"] != "resumed":
            frames.append(frame)

    assert [frame["seq"] for frame in frames] == [seq for seq, _ in stored if seq > 2]
    assert frame["last_seq"] == len(stored)


def test_too_many_frames_are_refused_but_the_socket_stays(asgi_server, member, settings):
    with ChatSocket(asgi_server, member) as socket:
        for _ in range(12):
            socket.send("{}")
        codes = [socket.recv()["code"] for _ in range(12)]
    assert codes.count("too_fast") >= 1
    assert codes[0] == "unknown_type"


def test_an_idle_socket_stays_open(asgi_server, member):
    # redis-py 8 with channels-redis dropped idle consumers after ~5 s (docs/adr/0001): stay idle 12 s.
    with ChatSocket(asgi_server, member) as socket:
        conversation = socket.say("Before the pause")["conversation"]
        time.sleep(12)
        socket.send({"type": "resume", "conversation": conversation, "after": 0})
        assert socket.until(lambda f: f["type"] == "resumed")["conversation"] == conversation
