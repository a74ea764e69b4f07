"""Staff approval of sensitive proposals: the policy, the member's confirmation that waits, the approval or the
refusal by support staff, every decision in the audit log, and the API's link from an access change to the
proposal it carries out. The last tests go end to end: a real socket, daphne, the API and a Celery worker."""

from datetime import timedelta
from unittest import mock

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import AgentRun
from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from governance.keys import private_pem
from governance.tokens import issue_local_user_token
from support.models import ActionProposal, Calendar, CalendarAccess, Conversation
from support.services import calendar_access_revoke, calendar_access_set
from support.services.proposals import (
    approval_reasons,
    member_token_keep,
    proposal_approve,
    proposal_decide,
    proposal_execute,
    proposal_refuse,
)
from support.tasks import run_decision
from tests.factories import MembershipFactory, UserFactory
from tests.governance.conftest import LOCAL_ISSUER, KeyRing
from tests.governance.jwt_helpers import ed25519_key, service_claims
from tests.support.chat_client import ChatSocket, wait_until_idle
from tests.support.console_data import conversation_of, decisions, events_of, proposal_in, support_staff
from tests.support.harbour import harbour

Status = ActionProposal.Status


@pytest.fixture
def staff(db):
    return support_staff()


@pytest.fixture
def decisions_run(monkeypatch):
    """run_decision.delay, recorded instead of sent to the broker."""
    calls = mock.Mock()
    monkeypatch.setattr(run_decision, "delay", calls)
    return calls


def grant_by_owner(practice, level: str) -> ActionProposal:
    """Anna, who owns Dr Novak surgery, asks to give Tomas `level` on it."""
    return proposal_in(
        conversation_of(practice.anna), calendar=practice.novak_surgery, member=practice.tomas, level=level, before=None
    )


def grant_by_delegate(practice, level: str = "book") -> ActionProposal:
    """Léa, who manages Ben's calendar without owning it, asks to give Tomas `level` on it."""
    return proposal_in(
        conversation_of(practice.lea), calendar=practice.okafor_main, member=practice.tomas, level=level, before=None
    )


def confirmed(proposal: ActionProposal) -> ActionProposal:
    """The member confirms it (a sensitive one then waits for staff)."""
    return proposal_decide(
        user=proposal.requested_by, proposal_id=proposal.pk, hash=proposal.arguments_hash, decision="confirm"
    )


def approve(staff, proposal: ActionProposal, hash: str | None = None) -> ActionProposal:
    return proposal_approve(staff=staff, proposal_id=proposal.pk, hash=hash or proposal.arguments_hash)


def refreshed(proposal: ActionProposal) -> ActionProposal:
    proposal.refresh_from_db()
    return proposal


def level_of(calendar, member) -> str | None:
    return CalendarAccess.objects.filter(calendar=calendar, user=member).values_list("level", flat=True).first()


# --- The policy -----------------------------------------------------------------------------------------------


def test_giving_manage_needs_approval_even_from_the_owner(practice):
    assert approval_reasons(grant_by_owner(practice, "manage")) == ["manage_grant"]


def test_a_booking_grant_by_the_owner_needs_none(practice):
    assert approval_reasons(grant_by_owner(practice, "book")) == []


def test_a_grant_by_a_manager_who_is_not_the_owner_needs_approval(practice):
    assert approval_reasons(grant_by_delegate(practice, "book")) == ["delegated_manager"]
    assert approval_reasons(grant_by_delegate(practice, "manage")) == ["manage_grant", "delegated_manager"]


def test_without_rules_nothing_needs_approval(practice, settings):
    settings.STAFF_APPROVAL_RULES = []

    assert approval_reasons(grant_by_owner(practice, "manage")) == []
    assert approval_reasons(grant_by_delegate(practice, "manage")) == []
    proposal = confirmed(grant_by_delegate(practice, "manage"))
    assert proposal.status == Status.CONFIRMED


def test_the_revoke_and_any_rules(practice, settings):
    settings.STAFF_APPROVAL_RULES = ["revoke"]
    revoke = proposal_in(
        conversation_of(practice.anna), calendar=practice.novak_main, member=practice.tom, level=None, before="view"
    )
    assert approval_reasons(revoke) == ["revoke"]
    assert approval_reasons(grant_by_owner(practice, "manage")) == []

    settings.STAFF_APPROVAL_RULES = ["any"]
    assert approval_reasons(grant_by_owner(practice, "view")) == ["any"]


# --- The member's confirmation waits for staff ----------------------------------------------------------------


def test_a_sensitive_confirmation_waits_for_approval(practice, settings, decisions_run):
    proposal = grant_by_owner(practice, "manage")
    confirmable_until = proposal.expires_at

    confirmed(proposal)

    proposal = refreshed(proposal)
    assert proposal.status == Status.AWAITING_APPROVAL
    assert proposal.approval_reasons == ["manage_grant"]
    assert proposal.decided_at is not None
    assert proposal.expires_at > confirmable_until
    assert proposal.expires_at >= timezone.now() + timedelta(seconds=settings.STAFF_APPROVAL_TTL - 60)
    result = events_of(proposal.conversation, "result")[-1]
    assert result["status"] == "awaiting_approval"
    assert result["reasons"] == ["manage_grant"]
    assert result["proposal"] == proposal.pk
    assert Conversation.objects.get(pk=proposal.conversation_id).run_status == "waiting_approval"
    assert decisions(proposal)[-1] == (practice.anna, "confirm")
    decisions_run.assert_not_called()


def test_an_ordinary_confirmation_does_not_wait(practice):
    proposal = confirmed(grant_by_owner(practice, "book"))

    assert refreshed(proposal).status == Status.CONFIRMED
    assert proposal.approval_reasons == []


# --- Approval -------------------------------------------------------------------------------------------------


def test_staff_approve_and_the_change_runs_as_the_member_asked(
    practice, staff, decisions_run, django_capture_on_commit_callbacks
):
    proposal = confirmed(grant_by_delegate(practice))

    with django_capture_on_commit_callbacks(execute=True):
        approve(staff, proposal)

    proposal = refreshed(proposal)
    assert proposal.status == Status.CONFIRMED
    assert proposal.reviewed_by == staff
    assert proposal.reviewed_at is not None
    decisions_run.assert_called_once_with(proposal.pk, {"kind": "decision", "decision": "confirm"}, "")
    result = events_of(proposal.conversation, "result")[-1]
    assert (result["status"], result["code"], result["reviewer"]) == ("confirmed", "approved", "Sophie Durand")
    entry = LogEntry.objects.get_for_object(proposal).order_by("-pk").first()
    assert entry.actor == staff
    assert entry.additional_data == {
        "decision": "approve",
        "requested_by": practice.lea.pk,
        "organization": practice.org.pk,
    }
    assert entry.changes_dict["status"] == ["awaiting_approval", "confirmed"]
    assert level_of(practice.okafor_main, practice.tomas) is None  # the worker makes the change


def test_the_members_identity_provider_token_goes_with_the_approved_change(
    practice, staff, decisions_run, django_capture_on_commit_callbacks
):
    proposal = confirmed(grant_by_delegate(practice))
    member_token_keep(proposal_id=proposal.pk, token="the-members-idp-token")

    with django_capture_on_commit_callbacks(execute=True):
        approve(staff, proposal)

    decisions_run.assert_called_once_with(
        proposal.pk, {"kind": "decision", "decision": "confirm"}, "the-members-idp-token"
    )
    assert cache.get(f"proposal-member-token:{proposal.pk}") is None  # used once, then forgotten


def test_nobody_approves_a_change_they_asked_for(practice, decisions_run):
    boss = UserFactory(username="root", first_name="Rita", last_name="Root", is_superuser=True)
    MembershipFactory(user=boss, organization=practice.org, role="admin")
    assert boss.is_support_staff
    proposal = confirmed(
        proposal_in(
            conversation_of(boss), calendar=practice.okafor_main, member=practice.tomas, level="book", before=None
        )
    )
    assert proposal.status == Status.AWAITING_APPROVAL

    with pytest.raises(NotAllowed) as refused:
        approve(boss, proposal)
    with pytest.raises(NotAllowed) as refused_too:
        proposal_refuse(staff=boss, proposal_id=proposal.pk, hash=proposal.arguments_hash, reason="Mine")

    assert refused.value.code == refused_too.value.code == "own_proposal"
    assert refreshed(proposal).status == Status.AWAITING_APPROVAL
    decisions_run.assert_not_called()


def test_a_form_that_no_longer_matches_is_refused(practice, staff, decisions_run):
    proposal = confirmed(grant_by_delegate(practice))

    with pytest.raises(ValidationFailed) as refused:
        approve(staff, proposal, hash="0" * 64)

    assert refused.value.code == "stale_proposal"
    assert refreshed(proposal).status == Status.AWAITING_APPROVAL
    decisions_run.assert_not_called()


def test_an_unknown_proposal_is_not_found(staff):
    with pytest.raises(NotFound):
        proposal_approve(staff=staff, proposal_id=999999, hash="0" * 64)


def test_an_expired_approval_changes_nothing(practice, staff, decisions_run):
    proposal = confirmed(grant_by_delegate(practice))
    ActionProposal.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(Conflict) as refused:
        approve(staff, proposal)

    assert refused.value.code == "expired"
    proposal = refreshed(proposal)
    assert (proposal.status, proposal.result_code, proposal.reviewed_by) == ("expired", "expired", None)
    assert decisions(proposal)[-1] == (None, "expire")
    assert events_of(proposal.conversation, "result")[-1]["status"] == "expired"
    decisions_run.assert_not_called()


def test_an_access_changed_meanwhile_fails_the_proposal(practice, staff, decisions_run):
    proposal = confirmed(grant_by_delegate(practice))
    CalendarAccess.objects.create(calendar=practice.okafor_main, user=practice.tomas, level="view")

    with pytest.raises(Conflict) as refused:
        approve(staff, proposal)

    assert refused.value.code == "state_changed"
    proposal = refreshed(proposal)
    assert (proposal.status, proposal.result_code) == ("failed", "state_changed")
    assert decisions(proposal)[-1] == (staff, "approve")
    assert events_of(proposal.conversation, "result")[-1]["code"] == "state_changed"
    assert Conversation.objects.get(pk=proposal.conversation_id).run_status == "done"
    assert level_of(practice.okafor_main, practice.tomas) == "view"
    decisions_run.assert_not_called()


def test_a_proposal_is_approved_once(practice, staff, decisions_run, django_capture_on_commit_callbacks):
    other = support_staff("marc", "Marc", "Lefort")
    proposal = confirmed(grant_by_delegate(practice))

    with django_capture_on_commit_callbacks(execute=True):
        approve(staff, proposal)
        with pytest.raises(Conflict) as again:
            approve(other, proposal)

    assert again.value.code == "already_reviewed"
    assert refreshed(proposal).reviewed_by == staff
    assert decisions_run.call_count == 1
    assert [decision for _, decision in decisions(proposal)].count("approve") == 1


def test_only_a_proposal_waiting_for_approval_can_be_approved(practice, staff, decisions_run):
    unconfirmed = grant_by_delegate(practice)
    ordinary = confirmed(grant_by_owner(practice, "book"))

    for proposal in (unconfirmed, ordinary):
        with pytest.raises(Conflict) as refused:
            approve(staff, proposal)
        assert refused.value.code == "already_reviewed"
    assert (refreshed(unconfirmed).status, refreshed(ordinary).status) == ("proposed", "confirmed")


# --- Refusal --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_refusal_needs_a_reason(practice, staff, reason):
    proposal = confirmed(grant_by_delegate(practice))

    with pytest.raises(ValidationFailed) as refused:
        proposal_refuse(staff=staff, proposal_id=proposal.pk, hash=proposal.arguments_hash, reason=reason)

    assert refused.value.code == "reason_required"
    assert refreshed(proposal).status == Status.AWAITING_APPROVAL


def test_staff_refuse_with_a_reason_the_member_reads(
    practice, staff, decisions_run, django_capture_on_commit_callbacks
):
    proposal = confirmed(grant_by_delegate(practice))

    with django_capture_on_commit_callbacks(execute=True):
        proposal_refuse(
            staff=staff, proposal_id=proposal.pk, hash=proposal.arguments_hash, reason=" Ben must ask for it himself. "
        )

    proposal = refreshed(proposal)
    assert (proposal.status, proposal.result_code) == ("rejected", "refused")
    assert proposal.review_reason == "Ben must ask for it himself."
    assert proposal.reviewed_by == staff
    result = events_of(proposal.conversation, "result")[-1]
    assert (result["status"], result["code"]) == ("rejected", "refused")
    assert (result["reason"], result["reviewer"]) == ("Ben must ask for it himself.", "Sophie Durand")
    assert Conversation.objects.get(pk=proposal.conversation_id).run_status == "done"
    assert decisions(proposal)[-1] == (staff, "refuse")
    decisions_run.assert_not_called()
    with pytest.raises(Conflict) as too_late:
        approve(staff, proposal)
    assert too_late.value.code == "already_reviewed"
    assert level_of(practice.okafor_main, practice.tomas) is None


# --- The whole life of a proposal in the audit log -------------------------------------------------------------


class PlatformAsTheMember:
    """Stands in for the platform API client: the same services, as the member, linked to the proposal."""

    def __init__(self, member):
        self.member = member
        self.calls: list[tuple] = []

    def accesses(self, calendar_id: int) -> list[dict]:
        rows = CalendarAccess.objects.filter(calendar_id=calendar_id).values_list("user_id", "level")
        return [{"user": {"id": user_id}, "level": level} for user_id, level in rows]

    def set_access(self, calendar_id: int, user_id: int, level: str, *, proposal_id: int | None = None) -> dict:
        self.calls.append(("set", calendar_id, user_id, level, proposal_id))
        calendar_access_set(
            actor=self.member,
            calendar=Calendar.objects.get(pk=calendar_id),
            user=get_user_model().objects.get(pk=user_id),
            level=level,
            via="agents",
            proposal_id=proposal_id,
        )
        return {}

    def revoke_access(self, calendar_id: int, user_id: int, *, proposal_id: int | None = None) -> None:
        self.calls.append(("revoke", calendar_id, user_id, proposal_id))
        calendar_access_revoke(
            actor=self.member,
            calendar=Calendar.objects.get(pk=calendar_id),
            user=get_user_model().objects.get(pk=user_id),
            via="agents",
            proposal_id=proposal_id,
        )


def test_every_decision_of_a_proposal_is_in_the_audit_log(practice, staff, decisions_run):
    proposal = confirmed(grant_by_delegate(practice))
    approve(staff, proposal)
    client = PlatformAsTheMember(practice.lea)

    proposal_execute(proposal_id=proposal.pk, client=client)

    proposal = refreshed(proposal)
    assert proposal.status == Status.EXECUTED and proposal.executed_at is not None
    assert client.calls == [("set", practice.okafor_main.pk, practice.tomas.pk, "book", proposal.pk)]
    assert decisions(proposal) == [
        (practice.lea, "propose"),
        (practice.lea, "confirm"),
        (staff, "approve"),
        (practice.lea, "execute"),
        (practice.lea, "executed"),
    ]
    entries = list(LogEntry.objects.get_for_object(proposal).order_by("timestamp", "pk"))
    assert entries[0].action == LogEntry.Action.CREATE
    assert entries[0].additional_data == {"service": "agents", "decision": "propose", "organization": practice.org.pk}
    assert [entry.changes_dict.get("status") for entry in entries[1:]] == [
        ["proposed", "awaiting_approval"],
        ["awaiting_approval", "confirmed"],
        ["confirmed", "executing"],
        ["executing", "executed"],
    ]
    assert entries[3].additional_data["approved_by"] == staff.pk
    assert entries[4].additional_data["approved_by"] == staff.pk
    access = CalendarAccess.objects.get(calendar=practice.okafor_main, user=practice.tomas)
    (created,) = LogEntry.objects.get_for_object(access)
    assert created.actor == practice.lea
    assert created.additional_data == {"service": "agents", "proposal": proposal.pk, "organization": practice.org.pk}


def test_executing_twice_changes_once(practice, staff, decisions_run):
    proposal = confirmed(grant_by_delegate(practice))
    approve(staff, proposal)
    client = PlatformAsTheMember(practice.lea)

    proposal_execute(proposal_id=proposal.pk, client=client)
    proposal_execute(proposal_id=proposal.pk, client=client)

    assert len(client.calls) == 1
    assert [decision for _, decision in decisions(proposal)].count("executed") == 1


# --- The API's link from a change to its proposal -------------------------------------------------------------


def access_url(calendar, member) -> str:
    return f"/api/v1/calendars/{calendar.pk}/access/{member.pk}/"


def executing(proposal: ActionProposal) -> ActionProposal:
    ActionProposal.objects.filter(pk=proposal.pk).update(status=Status.EXECUTING)
    return refreshed(proposal)


def access_state():
    rows = sorted(CalendarAccess.objects.values_list("calendar_id", "user_id", "level"))
    return rows, LogEntry.objects.get_for_model(CalendarAccess).count()


def test_a_change_named_after_its_proposal_is_linked_to_it(practice, as_user):
    proposal = executing(confirmed(grant_by_owner(practice, "book")))

    response = as_user(practice.anna).put(
        access_url(practice.novak_surgery, practice.tomas),
        {"level": "book"},
        format="json",
        headers={"X-Alfred-Proposal": str(proposal.pk)},
    )

    assert response.status_code == 201, response.content
    access = CalendarAccess.objects.get(calendar=practice.novak_surgery, user=practice.tomas)
    (created,) = LogEntry.objects.get_for_object(access)
    assert created.additional_data == {"proposal": proposal.pk, "organization": practice.org.pk}


@pytest.mark.parametrize(
    "mismatch",
    ["not_executing", "someone_elses", "other_level", "other_member", "other_calendar", "revoke_instead", "garbage"],
)
def test_a_change_that_is_not_the_named_proposal_is_refused(practice, as_user, mismatch):
    proposal = confirmed(grant_by_owner(practice, "book"))
    if mismatch != "not_executing":
        proposal = executing(proposal)
    if mismatch == "someone_elses":
        ActionProposal.objects.filter(pk=proposal.pk).update(requested_by=practice.ben)
    calendar, member, level = practice.novak_surgery, practice.tomas, "book"
    if mismatch == "other_level":
        level = "manage"
    if mismatch == "other_member":
        member = practice.lea
    if mismatch == "other_calendar":
        calendar = practice.novak_main
    header = "12abc" if mismatch == "garbage" else str(proposal.pk)
    before = access_state()

    client = as_user(practice.anna)
    url = access_url(calendar, member)
    if mismatch == "revoke_instead":
        CalendarAccess.objects.create(calendar=calendar, user=member, level="view", granted_by=practice.anna)
        before = access_state()
        response = client.delete(url, headers={"X-Alfred-Proposal": header})
    else:
        response = client.put(url, {"level": level}, format="json", headers={"X-Alfred-Proposal": header})

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "proposal_mismatch"
    assert access_state() == before


@pytest.fixture
def signing_keys(settings, tmp_path) -> KeyRing:
    """The agents' service key and the local issuer's key (as tests/governance/conftest.py's `keys`)."""
    ring = KeyRing(keys_dir=tmp_path / "keys", agents=ed25519_key(), local_issuer=ed25519_key())
    ring.register("agents", ring.agents)
    settings.KEYS_DIR = ring.keys_dir
    settings.SERVICE_JWT_AUDIENCE = "alfred-platform-api"
    settings.LOCAL_ISSUER_PRIVATE_KEY = private_pem(ring.local_issuer.private).decode()
    settings.LOCAL_TOKEN_ISSUER = LOCAL_ISSUER
    settings.LOCAL_TOKEN_AUDIENCE = "alfred-api"
    settings.OIDC_ENABLED = False
    settings.API_ALLOWED_CALLERS = {"read": ["agents"], "calendar_access_write": ["agents"]}
    return ring


def test_an_agent_call_with_both_tokens_is_linked_or_refused(practice, signing_keys):
    proposal = executing(confirmed(grant_by_owner(practice, "book")))
    headers = {
        "Authorization": f"Bearer {signing_keys.agents.sign(service_claims())}",
        "X-User-Token": issue_local_user_token(practice.anna),
        "X-Alfred-Proposal": str(proposal.pk),
    }
    url = access_url(practice.novak_surgery, practice.tomas)
    before = access_state()

    refused = APIClient().put(url, {"level": "view"}, format="json", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (400, "proposal_mismatch")
    assert access_state() == before

    done = APIClient().put(url, {"level": "book"}, format="json", headers=headers)
    assert done.status_code == 201, done.content
    (created,) = LogEntry.objects.get_for_object(
        CalendarAccess.objects.get(calendar=practice.novak_surgery, user=practice.tomas)
    )
    assert created.actor == practice.anna
    assert created.additional_data == {
        "service": "agents",
        "proposal": proposal.pk,
        "organization": practice.org.pk,
        "token": mock.ANY,  # the service token's jti
    }


# --- End to end: the member's socket, the worker, the API -------------------------------------------------------


@pytest.fixture
def world(transactional_db, celery_worker_process):
    yield harbour()
    wait_until_idle()


@pytest.mark.slow
def test_an_approved_change_is_made_by_the_worker_through_the_api(asgi_server, world):
    staff = support_staff()
    with ChatSocket(asgi_server, world.lea) as socket:
        socket.say("Give Tomas Reyes booking access to Dr Okafor's appointments calendar.")
        form = socket.until(lambda f: f["type"] == "form" and f.get("kind") == "proposal")["proposal"]
        assert form["summary"] == "Tomas Reyes will be able to book appointments in Dr Okafor appointments"
        socket.send({"type": "confirm", "proposal": form["id"], "hash": form["hash"], "decision": "confirm"})
        waiting = socket.until(lambda f: f["type"] == "result" and f["proposal"] == form["id"])
        assert (waiting["status"], waiting["reasons"]) == ("awaiting_approval", ["delegated_manager"])
        assert level_of(world.okafor_main, world.tomas) is None

        proposal_approve(staff=staff, proposal_id=form["id"], hash=form["hash"])

        done = socket.until(
            lambda f: f["type"] == "result" and f["proposal"] == form["id"] and f["status"] != "confirmed"
        )
        sentence = "Done: Tomas Reyes can now book appointments in Dr Okafor appointments."
        assert (done["status"], done["done"]) == ("executed", sentence)
        socket.until(lambda f: f["type"] == "message" and f["message"]["text"] == sentence)

    assert level_of(world.okafor_main, world.tomas) == "book"
    proposal = ActionProposal.objects.get(pk=form["id"])
    assert (proposal.status, proposal.reviewed_by) == ("executed", staff)
    assert decisions(proposal) == [
        (world.lea, "propose"),
        (world.lea, "confirm"),
        (staff, "approve"),
        (world.lea, "execute"),
        (world.lea, "executed"),
    ]
    access = CalendarAccess.objects.get(calendar=world.okafor_main, user=world.tomas)
    (created,) = LogEntry.objects.get_for_object(access)
    assert created.actor == world.lea
    assert created.additional_data == {
        "service": "agents",
        "proposal": proposal.pk,
        "organization": world.org.pk,
        "token": mock.ANY,  # the service token's jti
    }


@pytest.mark.slow
def test_a_refused_change_is_told_to_the_member_and_never_made(asgi_server, world):
    staff = support_staff()
    with ChatSocket(asgi_server, world.lea) as socket:
        socket.say("Give Tomas Reyes manage access to Dr Okafor's appointments calendar.")
        form = socket.until(lambda f: f["type"] == "form" and f.get("kind") == "proposal")["proposal"]
        socket.send({"type": "confirm", "proposal": form["id"], "hash": form["hash"], "decision": "confirm"})
        waiting = socket.until(lambda f: f["type"] == "result" and f["proposal"] == form["id"])
        assert waiting["reasons"] == ["manage_grant", "delegated_manager"]

        proposal_refuse(staff=staff, proposal_id=form["id"], hash=form["hash"], reason="Only Dr Okafor decides that.")

        refused = socket.until(lambda f: f["type"] == "result" and f["proposal"] == form["id"])
        assert (refused["status"], refused["code"]) == ("rejected", "refused")
        assert refused["reason"] == "Only Dr Okafor decides that."

    assert level_of(world.okafor_main, world.tomas) is None
    assert not LogEntry.objects.get_for_model(CalendarAccess).filter(additional_data__proposal=form["id"]).exists()


@pytest.mark.slow
def test_a_change_approved_after_the_member_wrote_again_says_the_same_done_sentence(asgi_server, world):
    """The graph moved on (a new message) while the change waited for staff: the worker carries it out on its
    own (tasks._execute_approved) and says the done-sentence stored with the proposal, as the form does."""
    staff = support_staff()
    with ChatSocket(asgi_server, world.lea) as socket:
        conversation = socket.say("Give Tomas Reyes booking access to Dr Okafor's appointments calendar.")[
            "conversation"
        ]
        form = socket.until(lambda f: f["type"] == "form" and f.get("kind") == "proposal")["proposal"]
        socket.send({"type": "confirm", "proposal": form["id"], "hash": form["hash"], "decision": "confirm"})
        socket.until(lambda f: f["type"] == "result" and f["proposal"] == form["id"])
        socket.say("Thank you!", conversation=conversation)
        wait_until_idle(timeout=30)
        assert ActionProposal.objects.get(pk=form["id"]).status == ActionProposal.Status.AWAITING_APPROVAL

        proposal_approve(staff=staff, proposal_id=form["id"], hash=form["hash"])

        sentence = "Done: Tomas Reyes can now book appointments in Dr Okafor appointments."
        done = socket.until(
            lambda f: f["type"] == "result" and f["proposal"] == form["id"] and f["status"] == "executed"
        )
        assert done["done"] == sentence
        socket.until(lambda f: f["type"] == "message" and f["message"]["text"] == sentence)

    assert level_of(world.okafor_main, world.tomas) == "book"
    wait_until_idle(timeout=30)
    (run,) = AgentRun.objects.filter(proposal_id=form["id"])  # carried out outside the graph
    assert run.path == ["execute"]
