"""Whole turns with the offline engine (the embedded default): real socket, daphne, worker process, graph,
Postgres checkpointer and the platform API over HTTP. Conversations that take several messages."""

import pytest
from auditlog.models import LogEntry

from agents.models import AgentRun
from support.models import ActionProposal, CalendarAccess, Conversation, Message
from support.services.proposals import proposal_approve
from tests.support.chat_client import ChatSocket, wait_until_idle
from tests.support.console_data import support_staff
from tests.support.harbour import harbour

pytestmark = pytest.mark.slow


@pytest.fixture
def world(transactional_db, celery_worker_process):
    yield harbour()
    wait_until_idle()


def assistant_says(socket: ChatSocket, contains: str = "") -> str:
    frame = socket.until(
        lambda f: f["type"] == "message" and f["message"]["role"] == "assistant" and contains in f["message"]["text"]
    )
    return frame["message"]["text"]


def proposal_form(socket: ChatSocket) -> dict:
    return socket.until(lambda f: f["type"] == "form" and f.get("kind") == "proposal")["proposal"]


def confirm(socket: ChatSocket, proposal: dict, decision: str = "confirm") -> dict:
    socket.send({"type": "confirm", "proposal": proposal["id"], "hash": proposal["hash"], "decision": decision})
    return socket.until(lambda f: f["type"] == "result" and f["proposal"] == proposal["id"])


def level(world, calendar, member):
    access = CalendarAccess.objects.filter(calendar=calendar, user=member).first()
    return access.level if access else None


def test_an_ambiguous_name_is_asked_with_the_real_candidates(asgi_server, world):
    with ChatSocket(asgi_server, world.anna) as socket:
        conversation = socket.say("Give Tom view access to my surgery calendar.")["conversation"]
        choice = socket.until(lambda f: f["type"] == "form" and f.get("kind") == "choice")
        assert choice["field"] == "member"
        assert sorted(option["label"] for option in choice["options"]) == ["Tom Fisher", "Tomas Reyes"]

        socket.say("Tomas Reyes", conversation=conversation)
        proposal = proposal_form(socket)
        assert proposal["summary"] == "Tomas Reyes will be able to see Dr Novak surgery"
        # The message that introduces the form came before it.
        introduction = socket.seen[-2]
        assert introduction["type"] == "message" and proposal["summary"] in introduction["message"]["text"]
        assert confirm(socket, proposal)["status"] == "executed"

    assert level(world, world.novak_surgery, world.tomas) == "view"
    assert level(world, world.novak_surgery, world.tom) is None


def test_each_change_carries_the_frame_it_came_from_and_the_person_on_whose_authority(asgi_server, world):
    with ChatSocket(asgi_server, world.anna) as socket:
        socket.say("Give Tomas Reyes view access to my surgery calendar")
        proposal = proposal_form(socket)
        assert confirm(socket, proposal)["status"] == "executed"
    wait_until_idle()

    asked, resumed = AgentRun.objects.order_by("id")
    assert len({asked.correlation_id, resumed.correlation_id}) == 2 and all(
        len(run.correlation_id) == 32 for run in (asked, resumed)
    )
    entries = list(LogEntry.objects.get_for_object(ActionProposal.objects.get()).order_by("id"))
    access = CalendarAccess.objects.get(calendar=world.novak_surgery, user=world.tomas)
    entries += list(LogEntry.objects.get_for_object(access))
    decisions = [(entry.additional_data or {}).get("decision", "access") for entry in entries]
    assert decisions == ["propose", "confirm", "execute", "executed", "access"]
    # Proposed in the turn of the message; confirmed, carried out and changed (in the API, over HTTP) in the
    # frame of the confirmation: one id ties each chain. Every entry is the member's, never "system".
    assert [entry.cid for entry in entries] == [asked.correlation_id] + [resumed.correlation_id] * 4
    assert {entry.actor for entry in entries} == {world.anna}


def test_a_correction_before_confirming_updates_the_proposal(asgi_server, world):
    with ChatSocket(asgi_server, world.anna) as socket:
        conversation = socket.say("Give Tomas Reyes view access to my surgery calendar")["conversation"]
        first = proposal_form(socket)
        socket.say("actually, make it booking", conversation=conversation)
        second = proposal_form(socket)
        assert second["summary"] == "Tomas Reyes will be able to book appointments in Dr Novak surgery"
        assert confirm(socket, second)["status"] == "executed"

    assert ActionProposal.objects.get(pk=first["id"]).status == "expired"
    assert level(world, world.novak_surgery, world.tomas) == "book"


def test_in_french_with_a_delegated_manager(asgi_server, world):
    with ChatSocket(asgi_server, world.lea) as socket:
        socket.say("Donne à Tomas Reyes l'accès en réservation à l'agenda du Dr Okafor.")
        proposal = proposal_form(socket)
        summary = " ".join(proposal["summary"].replace("\u202f", " ").replace("\xa0", " ").split())
        assert summary == "Tomas Reyes pourra prendre des rendez-vous dans Dr Okafor appointments"
        # Léa manages a calendar she does not own: by default a member of staff approves her change.
        assert confirm(socket, proposal)["status"] == "awaiting_approval"
        assert level(world, world.okafor_main, world.tomas) is None
        proposal_approve(staff=support_staff(), proposal_id=proposal["id"], hash=proposal["hash"])
        done = assistant_says(socket, "Tomas Reyes")

    assert " ".join(done.replace("\u202f", " ").replace("\xa0", " ").split()) == (
        "C’est fait : Tomas Reyes peut maintenant prendre des rendez-vous dans Dr Okafor appointments."
    )
    assert level(world, world.okafor_main, world.tomas) == "book"


def test_a_viewer_is_told_why_nothing_can_be_done(asgi_server, world):
    with ChatSocket(asgi_server, world.tom) as socket:
        socket.say("Give Léa Girard booking access to Dr Novak's appointments calendar.")
        text = assistant_says(socket, "Dr Novak appointments")

    assert "only its owner (Anna Novak)" in text
    assert not ActionProposal.objects.exists()
    assert level(world, world.novak_main, world.lea) is None


def test_someone_from_another_practice_is_not_found(asgi_server, world):
    with ChatSocket(asgi_server, world.anna) as socket:
        socket.say("Give Sam Carter view access to my appointments calendar.")
        text = assistant_says(socket, "Sam Carter")

    assert "can't find" in text
    assert not ActionProposal.objects.exists()


def test_handoff_and_refusal(asgi_server, world):
    with ChatSocket(asgi_server, world.ben) as socket:
        socket.say("Can I speak to someone from support?")
        assert "support team" in assistant_says(socket)
    with ChatSocket(asgi_server, world.ben) as socket:
        socket.say("What dose of ibuprofen should I give a child?")
        refusal = assistant_says(socket)
        assert "can't help with that" in refusal
        # Streamed as a model's reply is, a few words a frame, before the whole message.
        tokens = [frame["text"] for frame in socket.seen if frame["type"] == "token"]
        assert len(tokens) >= 3 and "".join(tokens) == refusal[: len("".join(tokens))]

    statuses = set(Conversation.objects.values_list("status", flat=True))
    assert statuses == {"handed_off", "open"}


def test_a_second_message_waits_for_the_first_turn(asgi_server, world):
    with ChatSocket(asgi_server, world.anna) as socket:
        conversation = socket.say("Give Tomas Reyes view access to my surgery calendar")["conversation"]
        socket.say("actually, make it booking", conversation=conversation)  # sent while the first turn runs
        first = proposal_form(socket)
        second = proposal_form(socket)

    assert first["summary"] == "Tomas Reyes will be able to see Dr Novak surgery"
    assert second["summary"] == "Tomas Reyes will be able to book appointments in Dr Novak surgery"
    wait_until_idle()
    replies = Message.objects.filter(role="assistant").order_by("id")
    assert [m.reply_to.text for m in replies] == [
        "Give Tomas Reyes view access to my surgery calendar",
        "actually, make it booking",
    ]
