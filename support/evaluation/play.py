"""Play one case through the path a chat message takes, as the case's person.

`say` is what the chat consumer does with a message frame: `message_receive`, whose turn (`run_turn`,
the real graph with the configured provider, the tools and the platform API) runs on commit — eagerly,
in this process (see `environment`). `confirm` is what it does with a confirm frame on the pending
proposal, as shown (its id and hash): `proposal_decide` as the person, then `run_decision` on commit; a
proposal that the approval policy holds is approved at once by an evaluation reviewer (support staff).
A `confirm` with nothing pending does nothing and is noted.
"""

import time
import uuid
from dataclasses import dataclass, field

from django.db import transaction

from agents.models import AgentRun
from agents.providers.offline.text import detect_language
from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from support.evaluation.dataset import Case, Turn
from support.evaluation.world import BuiltWorld
from support.models import ActionProposal, Conversation, Message
from support.services.chat import conversation_start, message_receive
from support.services.proposals import proposal_approve, proposal_decide
from support.tasks import run_decision

NOTHING_TO_CONFIRM = "nothing to confirm"


@dataclass
class PlayedTurn:
    kind: str  # say | confirm
    latency_ms: float
    ran: bool  # whether the graph ran for it (a confirm with nothing pending does not)
    note: str = ""  # "nothing to confirm", "proposal 3 confirmed", a refused decision…
    errors: list[str] = field(default_factory=list)  # failed graph runs of this turn


@dataclass
class PlayedCase:
    conversation: Conversation
    first_message_id: int | None = None  # the first user message (the first turn's intent comes from its run)
    turns: list[PlayedTurn] = field(default_factory=list)


def play_case(case: Case, built: BuiltWorld) -> PlayedCase:
    """Every turn of the case, in order, as the case's person, in their practice."""
    user = built.users[case.member]
    organization = built.organizations[built.world.members[case.member].organization]
    conversation = conversation_start(user=user, language=_language(case.turns), organization_id=organization.pk)
    played = PlayedCase(conversation=conversation)
    for turn in case.turns:
        last_run = AgentRun.objects.filter(conversation_id=conversation.pk).order_by("-id").values_list("id", flat=True)
        since = last_run.first() or 0
        started = time.perf_counter()
        result = _say(played, turn) if turn.say is not None else _confirm(played, user, turn)
        result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        result.errors = list(
            AgentRun.objects.filter(conversation_id=conversation.pk, id__gt=since, status=AgentRun.Status.FAILED)
            .order_by("id")
            .values_list("error", flat=True)
        )
        played.turns.append(result)
    return played


def _language(turns: tuple[Turn, ...]) -> str:
    """The conversation's language, as the person's browser would send it: the language they write in."""
    first = next((turn.say for turn in turns if turn.say is not None), "")
    return detect_language(first) if first else "en"


def _say(played: PlayedCase, turn: Turn) -> PlayedTurn:
    conversation = Conversation.objects.get(pk=played.conversation.pk)
    message, _ = message_receive(conversation=conversation, client_id=uuid.uuid4().hex, text=turn.say)
    if played.first_message_id is None:
        played.first_message_id = message.pk
    ran = Message.objects.filter(pk=message.pk).exclude(status=Message.Status.PENDING).exists()
    return PlayedTurn(kind="say", latency_ms=0.0, ran=ran)


def _confirm(played: PlayedCase, user, turn: Turn) -> PlayedTurn:
    pending = (
        ActionProposal.objects.filter(conversation=played.conversation, status=ActionProposal.Status.PROPOSED)
        .order_by("-id")
        .first()
    )
    if pending is None:
        return PlayedTurn(kind="confirm", latency_ms=0.0, ran=False, note=NOTHING_TO_CONFIRM)
    decision = "confirm" if turn.confirm else "reject"
    try:
        with transaction.atomic():
            proposal = proposal_decide(
                user=user, proposal_id=pending.pk, hash=pending.arguments_hash, decision=decision
            )
            if proposal.status == ActionProposal.Status.AWAITING_APPROVAL:
                # The dataset plays the member, not support: a member of staff approves as soon as asked,
                # through the same service as the console (which then runs the decision).
                proposal_approve(staff=_reviewer(), proposal_id=proposal.pk, hash=proposal.arguments_hash)
                decision = "confirm, approved by staff"
            else:
                resume = {"kind": "decision", "decision": decision}
                transaction.on_commit(lambda: run_decision.delay(proposal.pk, resume))
    except (Conflict, NotAllowed, NotFound, ValidationFailed) as refusal:
        return PlayedTurn(kind="confirm", latency_ms=0.0, ran=False, note=f"{decision} refused: {refusal}")
    return PlayedTurn(kind="confirm", latency_ms=0.0, ran=True, note=f"proposal {proposal.pk}: {decision}")


def _reviewer():
    """The support staff member who approves in an evaluation (never one of the world's members)."""
    from django.contrib.auth import get_user_model

    reviewer, _ = get_user_model().objects.get_or_create(
        username="evaluation.reviewer",
        defaults={"first_name": "Evaluation", "last_name": "Reviewer", "platform_role": "support"},
    )
    return reviewer
