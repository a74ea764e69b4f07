"""The compliance console's page on one agent action: the member's message, the agent's runs and model calls,
the proposal with its hash and lifecycle, the platform API's change with the service token's id, and every
record the correlation ids tie together; its reading is audited."""

import pytest

from agents.models import AgentRun
from governance.correlation import correlation
from governance.models import AuditRead
from governance.services import security_event_record
from support.services.calendar_access import calendar_access_set
from support.services.proposals import proposal_decide
from tests.factories import UserFactory
from tests.support.console_data import conversation_of, proposal_in

pytestmark = pytest.mark.django_db

TURN, CONFIRMATION = "a" * 32, "b" * 32


@pytest.fixture
def officer(client):
    camille = UserFactory(username="camille", first_name="Camille", last_name="Roux", platform_role="compliance")
    client.force_login(camille)
    session = client.session
    session["compliance_reason"] = "Access review"
    session.save()
    return camille


@pytest.fixture
def action(practice):
    """An executed grant, as the graph, the member and the API leave it (each step under its own id)."""
    conversation = conversation_of(practice.anna)
    with correlation(TURN):
        proposal = proposal_in(
            conversation, calendar=practice.novak_surgery, member=practice.tomas, level="view", before=None
        )
        AgentRun.objects.create(
            conversation_id=conversation.pk,
            message_id=proposal.message_id,
            status="interrupted",
            intent="calendar_access",
            path=["triage", "extract", "resolve", "propose"],
            usage=[
                {"step": "triage", "model": "offline", "prompt_tokens": 12, "completion_tokens": 3, "latency_ms": 4}
            ],
        )
        security_event_record(kind="access_denied", reason="not_calendar_manager")  # a refusal in the same turn
    with correlation(CONFIRMATION):
        proposal_decide(user=practice.anna, proposal_id=proposal.pk, hash=proposal.arguments_hash, decision="confirm")
        calendar_access_set(
            actor=practice.anna,
            calendar=practice.novak_surgery,
            user=practice.tomas,
            level="view",
            via="agents",
            proposal_id=proposal.pk,
            token="jti-7f3a",
        )
    with correlation("c" * 32):
        security_event_record(kind="access_denied", reason="unrelated")
    return proposal


def test_the_whole_chain_on_one_page(client, officer, action, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        response = client.get(f"/compliance/actions/{action.pk}/")

    chain = response.context["chain"]
    page = response.content.decode()
    assert chain.message.text == "Please do it" and "Please do it" in page
    assert [run.intent for run in chain.runs] == ["calendar_access"] and "offline" in page and "12 / 3" in page
    assert [entry.decision for entry in chain.lifecycle] == ["propose", "confirm"]
    assert action.arguments_hash in page
    (change,) = chain.access_changes
    assert change.additional_data == {
        "service": "agents",
        "proposal": action.pk,
        "organization": action.conversation.organization_id,
        "token": "jti-7f3a",
    }
    assert "jti-7f3a" in page and "Anna Novak" in page
    assert chain.correlation_ids == [TURN, CONFIRMATION]
    reasons = {record.summary for record in chain.records if record.kind == "security"}
    assert reasons == {"not_calendar_manager"}  # tied by the turn's id; the unrelated one is not


def test_reading_the_chain_is_audited(client, officer, action):
    client.get(f"/compliance/actions/{action.pk}/")

    read = AuditRead.objects.get(what="chain")
    assert (read.user, read.target, read.reason) == (officer, f"proposal {action.pk}", "Access review")


def test_an_unknown_action_is_a_404_and_others_are_refused(client, officer, practice):
    assert client.get("/compliance/actions/999999/").status_code == 404

    client.force_login(practice.anna)
    assert client.get("/compliance/actions/1/").status_code == 403
