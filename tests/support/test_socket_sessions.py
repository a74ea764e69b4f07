"""Sockets follow their session, limits follow the person, and the console socket is for support staff.

Through a real daphne process: a socket whose session ended (logout, password change, deactivation) is closed
with 4401 at its next frame, which is not handled; a logout closes the sockets of that session at once. The
per-person turn limit holds across sockets (counted in Redis); it is tested in-process with small limits too.
"""

import contextlib
import json
import time
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.utils.crypto import get_random_string
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from governance import ratelimits
from governance.errors import RateLimited
from governance.ratelimits import rate_limit_take
from support.models import ActionProposal, Conversation, Message
from support.services.chat import conversation_start, message_receive
from support.services.handoff import conversation_hand_off, conversation_take_over
from tests.factories import MembershipFactory, UserFactory
from tests.support.chat_client import ChatSocket, session_cookie
from tests.support.console_data import (
    conversation_of,
    decisions,
    proposal_in,
    proposal_status,
    rate_limits_reset,
    support_staff,
)
from tests.support.harbour import harbour

CLOSED_FOR_SESSION = 4401


@pytest.fixture(autouse=True)
def _fresh_counters():
    rate_limits_reset()
    yield
    rate_limits_reset()


class ConsoleSocket(ChatSocket):
    """The console's socket (/ws/console/), with the chat client's helpers."""

    def __init__(self, base_url: str, user=None, *, cookie: str | None = None):
        host = urlsplit(base_url).netloc
        headers = {"Cookie": f"sessionid={cookie or session_cookie(user)}"} if user or cookie else {}
        self.ws = connect(
            f"ws://{host}/ws/console/", additional_headers=headers, origin=f"http://{host}", open_timeout=10
        ).__enter__()
        self.seen: list[dict] = []


HANDLED = ("ack", "error", "resumed", "result", "watching")  # what a handled frame gets back


def closed_for_session(socket: ChatSocket, timeout: float = 10) -> bool:
    """True when the server closes the socket with 4401 within `timeout`. Live events sent to it before may
    still arrive; an answer to a frame sent after the session ended fails the check."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            frame = socket.recv(timeout=max(0.1, deadline - time.monotonic()))
            assert frame["type"] not in HANDLED, f"a frame was handled after the session ended: {frame}"
    except ConnectionClosed:
        return socket.ws.close_code == CLOSED_FOR_SESSION


def send(socket: ChatSocket, frame) -> None:
    """Send, unless the server closed the socket already (a logout pushes the close)."""
    with contextlib.suppress(ConnectionClosed):
        socket.send(frame)


def message_frame(text: str, conversation=None) -> tuple[str, dict]:
    client_id = uuid.uuid4().hex
    return client_id, {"type": "message", "id": client_id, "conversation": conversation, "text": text}


@pytest.fixture
def member(transactional_db):
    user = UserFactory(username="nora", first_name="Nora", last_name="Klein")
    MembershipFactory(user=user, role="secretary")
    return user


# --- A socket never outlives its session ------------------------------------------------------------------------


def _end_session(how: str, user, session_key: str) -> None:
    if how == "session_deleted":
        Session.objects.filter(session_key=session_key).delete()
    elif how == "password_changed":
        user.set_password("a-brand-new-password")
        user.save()
    elif how == "deactivated":
        user.is_active = False
        user.save()
    elif how == "logged_out_in_django":
        client = Client()
        client.cookies["sessionid"] = session_key
        assert client.post("/accounts/logout/").status_code == 302


@pytest.mark.parametrize("how", ["session_deleted", "password_changed", "deactivated", "logged_out_in_django"])
def test_the_next_frame_after_the_session_ended_closes_the_socket(asgi_server, member, how):
    cookie = session_cookie(member)
    with ChatSocket(asgi_server, cookie=cookie) as socket:
        conversation = socket.say("Before")["conversation"]

        _end_session(how, member, cookie)
        client_id, frame = message_frame("After", conversation)
        send(socket, frame)

        assert closed_for_session(socket)
    assert Message.objects.filter(conversation_id=conversation).count() == 1
    assert not Message.objects.filter(client_id=client_id).exists()


def test_a_confirmation_after_logout_executes_nothing(asgi_server, transactional_db):
    world = harbour()
    proposal = proposal_in(
        conversation_of(world.anna), calendar=world.novak_surgery, member=world.tomas, level="book", before=None
    )
    cookie = session_cookie(world.anna)
    with ChatSocket(asgi_server, cookie=cookie) as socket:
        socket.send({"type": "resume", "conversation": proposal.conversation_id, "after": 0})
        socket.until(lambda f: f["type"] == "resumed")

        Session.objects.filter(session_key=cookie).delete()
        socket.send(
            {"type": "confirm", "proposal": proposal.pk, "hash": proposal.arguments_hash, "decision": "confirm"}
        )

        assert closed_for_session(socket)
    assert proposal_status(proposal) == ActionProposal.Status.PROPOSED
    assert decisions(proposal) == [(world.anna, "propose")]


def _logout_over_http(base_url: str, session_key: str) -> requests.Response:
    """POST /accounts/logout/ to the server, as the browser of that session does (with its CSRF token)."""
    token = get_random_string(32)
    http = requests.Session()
    http.trust_env = False  # our own server on 127.0.0.1: no proxy
    return http.post(
        f"{base_url}/accounts/logout/",
        cookies={"sessionid": session_key, "csrftoken": token},
        headers={"X-CSRFToken": token},
        allow_redirects=False,
        timeout=10,
    )


def test_a_logout_closes_the_idle_sockets_of_that_session_at_once(asgi_server, member):
    cookie, other_cookie = session_cookie(member), session_cookie(member)
    with ChatSocket(asgi_server, cookie=cookie) as idle, ChatSocket(asgi_server, cookie=other_cookie) as elsewhere:
        idle.say("Hello")
        elsewhere.say("Hello from another browser")

        response = _logout_over_http(asgi_server, cookie)

        assert response.status_code == 302, response.text
        assert closed_for_session(idle, timeout=5)  # nothing was sent on it: the server closed it
        assert not Session.objects.filter(session_key=cookie).exists()
        assert elsewhere.say("Still here")["type"] == "ack"  # another session of the same person stays


def test_an_audited_decision_over_the_socket_survives_recreated_content_types(asgi_server, transactional_db):
    """Content types can be recreated under a running server (a database restore; the suite's flush between
    tests). Requests and tasks forget the cached ids (governance.apps); a socket frame must too."""
    world = harbour()
    conversation = conversation_of(world.anna)
    first, second = (
        proposal_in(conversation, calendar=world.novak_surgery, member=member, level="manage", before=None)
        for member in (world.tomas, world.lea)
    )
    with ChatSocket(asgi_server, world.anna) as socket:
        socket.send({"type": "resume", "conversation": conversation.pk, "after": 0})
        socket.until(lambda f: f["type"] == "resumed")
        socket.send({"type": "confirm", "proposal": first.pk, "hash": first.arguments_hash, "decision": "confirm"})
        assert socket.until(lambda f: f["type"] == "result" and f["proposal"] == first.pk)["status"] == (
            "awaiting_approval"
        )
        # A restore: the proposal's content type gets a new id. (The old row cannot be deleted: its log entries
        # are append-only. It is renamed away, so a server that kept the old id would log to the wrong type.)
        ContentType.objects.filter(app_label="support", model="actionproposal").update(model="actionproposal_before")
        ContentType.objects.clear_cache()
        ContentType.objects.get_for_model(ActionProposal)

        socket.send({"type": "confirm", "proposal": second.pk, "hash": second.arguments_hash, "decision": "confirm"})
        result = socket.until(lambda f: f["type"] in ("result", "error") and f.get("proposal", second.pk) == second.pk)

    assert result["type"] == "result" and result["status"] == "awaiting_approval"
    assert proposal_status(second) == ActionProposal.Status.AWAITING_APPROVAL
    assert decisions(second)[-1] == (world.anna, "confirm")


def _server_forgets_content_types(base_url: str) -> None:
    """Any HTTP request makes the server forget its cached content type ids (see the test above: a socket frame
    does not, and the suite's flush between tests recreates them)."""
    http = requests.Session()
    http.trust_env = False
    assert http.get(f"{base_url}/accounts/login/", timeout=10).status_code == 200


def test_the_member_withdraws_a_hand_off_over_the_socket(asgi_server, member):
    other = UserFactory(username="otto")
    MembershipFactory(user=other)
    conversation, not_mine = conversation_of(member), conversation_of(other)
    for waiting in (conversation, not_mine):
        conversation_hand_off(conversation_id=waiting.pk, member=waiting.user)
    _server_forgets_content_types(asgi_server)
    with ChatSocket(asgi_server, member) as socket:
        socket.send({"type": "resume", "conversation": conversation.pk, "after": 0})
        socket.until(lambda f: f["type"] == "resumed")
        socket.send({"type": "cancel_handoff", "conversation": not_mine.pk})
        assert socket.until(lambda f: f["type"] == "error")["code"] == "not_found"

        socket.send({"type": "cancel_handoff", "conversation": conversation.pk})
        status = socket.until(lambda f: f["type"] == "status")

    assert status["state"] == "idle"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.graph_epoch) == (Conversation.Status.OPEN, 1)
    assert decisions(conversation)[-1] == (member, "hand_off_cancel")
    assert Conversation.objects.get(pk=not_mine.pk).status == Conversation.Status.HANDED_OFF


# --- Limits per person -----------------------------------------------------------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch):
    """The rate limits' clock, stopped 10 s into a minute (their windows are fixed, aligned on the epoch)."""
    clock = SimpleNamespace(now=1_800_000_010.0)
    monkeypatch.setattr(ratelimits, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


def test_a_rate_limit_counts_per_key_and_window(db, frozen_clock):
    key = f"test:{uuid.uuid4().hex}"
    for _ in range(2):
        rate_limit_take(key=key, limit=2, window=60, detail="Slow down.")

    with pytest.raises(RateLimited) as limited:
        rate_limit_take(key=key, limit=2, window=60, detail="Slow down.")

    assert (limited.value.code, limited.value.detail, limited.value.retry_after) == ("rate_limited", "Slow down.", 50)
    rate_limit_take(key=f"{key}:other", limit=2, window=60, detail="Slow down.")  # another person: their own count
    frozen_clock.now += 50  # the next window
    rate_limit_take(key=key, limit=2, window=60, detail="Slow down.")


def test_a_peek_counts_nothing_and_no_limit_is_no_limit(db, frozen_clock):
    key = f"test:{uuid.uuid4().hex}"
    for _ in range(5):
        rate_limit_take(key=key, limit=1, window=60, detail="", peek=True)
        rate_limit_take(key=f"{key}:free", limit=0, window=60, detail="")
    rate_limit_take(key=key, limit=1, window=60, detail="")

    with pytest.raises(RateLimited):
        rate_limit_take(key=key, limit=1, window=60, detail="", peek=True)


def test_a_person_sends_so_many_turns_a_minute_across_conversations(practice, settings, frozen_clock, monkeypatch):
    monkeypatch.setattr("support.tasks.run_turn.delay", lambda *args: None)
    settings.CHAT_TURNS_PER_MINUTE = 2
    first, second = conversation_of(practice.anna), conversation_of(practice.anna)
    message_receive(conversation=first, client_id="turn-0001", text="One")
    message_receive(conversation=second, client_id="turn-0002", text="Two")

    with pytest.raises(RateLimited) as limited:
        message_receive(conversation=first, client_id="turn-0003", text="Three")

    assert limited.value.code == "rate_limited"
    assert limited.value.retry_after == 50
    assert not Message.objects.filter(client_id="turn-0003").exists()
    assert Message.objects.filter(conversation__user=practice.anna).count() == 2
    again, created = message_receive(conversation=first, client_id="turn-0001", text="One")  # a resend is free
    assert created is False
    message_receive(conversation=conversation_of(practice.ben), client_id="turn-0004", text="Ben's own")


def test_a_person_opens_so_many_conversations_an_hour(practice, settings, frozen_clock):
    settings.CHAT_CONVERSATIONS_PER_HOUR = 1
    conversation_start(user=practice.anna)

    with pytest.raises(RateLimited) as limited:
        conversation_start(user=practice.anna)

    assert limited.value.retry_after > 0
    assert Conversation.objects.filter(user=practice.anna).count() == 1


def test_a_new_conversation_is_not_opened_past_the_turn_limit(practice, settings, frozen_clock, monkeypatch):
    monkeypatch.setattr("support.tasks.run_turn.delay", lambda *args: None)
    settings.CHAT_TURNS_PER_MINUTE = 1
    message_receive(conversation=conversation_start(user=practice.anna), client_id="turn-0001", text="One")

    with pytest.raises(RateLimited):
        conversation_start(user=practice.anna)

    assert Conversation.objects.filter(user=practice.anna).count() == 1


def _away_from_a_minute_boundary() -> None:
    left = 60 - time.time() % 60
    if left < 5:
        time.sleep(left + 0.2)


def test_the_turn_limit_holds_across_two_sockets(asgi_server, member, settings):
    limit = settings.CHAT_TURNS_PER_MINUTE  # the server reads the same environment
    assert limit > 1
    _away_from_a_minute_boundary()
    now = int(time.time())
    cache.set(f"ratelimit:turns:{member.pk}:{now - now % 60}", limit - 1, timeout=61)  # as if sent elsewhere
    with ChatSocket(asgi_server, member) as first, ChatSocket(asgi_server, member) as second:
        conversation = first.say("The last one this minute")["conversation"]

        client_id, frame = message_frame("One too many", conversation)
        second.send(frame)
        error = second.until(lambda f: f["type"] == "error")
        new_client_id, new_frame = message_frame("A new conversation, also too many")
        first.send(new_frame)
        new_error = first.until(lambda f: f["type"] == "error")

    assert (error["code"], error["ref"]) == ("rate_limited", client_id)
    assert 1 <= error["retry_after"] <= 60
    assert (new_error["code"], new_error["ref"]) == ("rate_limited", new_client_id)
    assert not Message.objects.filter(client_id__in=[client_id, new_client_id]).exists()
    assert Conversation.objects.filter(user=member).count() == 1


# --- The console socket --------------------------------------------------------------------------------------


def test_the_console_socket_is_for_support_staff(asgi_server, member):
    with ConsoleSocket(asgi_server, member) as socket:
        assert closed_for_session(socket)
    with ConsoleSocket(asgi_server) as anonymous:
        assert closed_for_session(anonymous)


def test_staff_watching_the_inbox_hear_of_a_hand_off(asgi_server, member):
    staff = support_staff()
    conversation = conversation_of(member)
    with ConsoleSocket(asgi_server, staff) as socket:
        socket.send({"type": "watch"})
        assert socket.recv() == {"type": "watching", "conversation": None}

        conversation_hand_off(conversation_id=conversation.pk, member=member)

        frame = socket.until(lambda f: f["type"] == "inbox", timeout=10)
    assert frame == {"type": "inbox", "conversation": conversation.pk, "reason": "handoff"}


def test_staff_watching_a_conversation_see_its_events_live(asgi_server, member):
    staff = support_staff()
    conversation = conversation_of(member)
    with ConsoleSocket(asgi_server, staff) as socket:
        socket.send({"type": "watch", "conversation": conversation.pk})
        assert socket.recv() == {"type": "watching", "conversation": conversation.pk}
        socket.send({"type": "watch", "conversation": 999999})
        assert socket.recv()["code"] == "not_found"

        conversation_take_over(staff=staff, conversation_id=conversation.pk)

        joined = socket.until(lambda f: f["type"] == "participant")
    assert (joined["conversation"], joined["action"], joined["name"]) == (conversation.pk, "joined", "Sophie Durand")


def test_a_console_socket_closes_when_its_staff_member_loses_the_role(asgi_server, transactional_db):
    staff = support_staff()
    with ConsoleSocket(asgi_server, staff) as socket:
        socket.send({"type": "watch"})
        socket.recv()

        staff.platform_role = "member"
        staff.save()
        socket.send(json.dumps({"type": "watch"}))

        assert closed_for_session(socket)
