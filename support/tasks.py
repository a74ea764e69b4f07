"""Celery tasks of the chat: run a turn for a user message, resume after a decision on a proposal.

Ids in, idempotent, enqueued on commit. One run per conversation at a time: a PostgreSQL advisory lock,
held on the task's database connection (so a dead worker releases it), makes a second message wait for
the first. Late acks and `reject_on_worker_lost`: a worker killed mid-turn gives its task back to the
broker, and the retried turn starts over safely (the reply, the proposal and the execution are idempotent).
"""

import logging
import time
from contextlib import contextmanager

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection

from agents.graphs.chat.texts import outcome_text, say
from agents.graphs.chat.tools import ChatContext
from agents.models import AgentRun
from agents.providers import get_chat_model
from agents.runner import NOTHING_TO_RESUME, decision_input, run_chat, turn_input
from support.agent_tools import SupportChatTools, user_token_for
from support.models import ActionProposal, Conversation, Message
from support.services.chat import TURN_LOCK_NAMESPACE as LOCK_NAMESPACE
from support.services.chat import ReplyWriter, run_status_set, user_message_done
from support.services.inbox import inbox_changed

logger = logging.getLogger(__name__)
WAIT_COUNTDOWN = 0.2  # seconds between two tries while another run holds the conversation
MAX_WAITS = 3000  # ≈ 10 minutes of waiting, then the turn is marked failed


@contextmanager
def conversation_lock(conversation_id: int):
    """Session-level, on this task's connection. A take-over waits on the same key for its transaction
    (support.services.handoff), so a turn and a take-over never overlap."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, conversation_id])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, conversation_id])


def _fail_visibly(conversation: Conversation, *, turn_key: str, reply_to_id: int | None, error: str) -> None:
    logger.error("chat run failed", extra={"conversation": conversation.pk, "error": error})
    ReplyWriter(conversation_id=conversation.pk, turn_key=turn_key, reply_to_id=reply_to_id).finish(
        text=say(conversation.language, "failed")
    )
    run_status_set(conversation_id=conversation.pk, status=Conversation.RunStatus.FAILED)


def _run(conversation: Conversation, *, message_id: int, graph_input, run: AgentRun, oidc_access_token: str):
    tools = SupportChatTools(
        conversation=conversation,
        message_id=message_id,
        user_token=user_token_for(conversation.user, oidc_access_token=oidc_access_token),
    )
    run = run_chat(
        conversation_id=conversation.pk,
        graph_input=graph_input,
        context=ChatContext(model=get_chat_model(), tools=tools),
        run=run,
        epoch=conversation.graph_epoch,
    )
    if run.outcome == "handed_off":  # the hand-off's own status event ("waiting for a person") is the last word
        return run
    status = (
        Conversation.RunStatus.WAITING if run.status == AgentRun.Status.INTERRUPTED else Conversation.RunStatus.DONE
    )
    run_status_set(conversation_id=conversation.pk, status=status)
    return run


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_WAITS)
def run_turn(self, conversation_id: int, message_id: int, oidc_access_token: str = "") -> None:
    """Answer one user message (or do nothing if it was answered already)."""
    message = Message.objects.select_related("conversation__user").filter(pk=message_id).first()
    if message is None or message.status != Message.Status.PENDING:
        return
    conversation = message.conversation
    earlier = Message.objects.filter(
        conversation=conversation, role=Message.Role.USER, status=Message.Status.PENDING, pk__lt=message_id
    ).exists()
    with conversation_lock(conversation_id) as acquired:
        if not acquired or earlier:
            raise self.retry(countdown=WAIT_COUNTDOWN)
        conversation.refresh_from_db(fields=["status", "graph_epoch", "language"])
        if conversation.status != Conversation.Status.OPEN:
            # A person took the conversation (or it waits for one, or was closed) after this message was
            # queued: it is theirs to answer, never Alfred's, and never replayed to Alfred later.
            user_message_done(message_id=message_id)
            Conversation.objects.filter(pk=conversation_id, run_status=Conversation.RunStatus.QUEUED).update(
                run_status=Conversation.RunStatus.IDLE
            )
            inbox_changed(conversation_id=conversation_id, reason="message")
            return
        run = _start_run(conversation_id=conversation_id, message_id=message_id)
        try:
            run_status_set(conversation_id=conversation_id, status=Conversation.RunStatus.RUNNING)
            graph_input = turn_input(
                conversation_id=conversation_id,
                user_id=conversation.user_id,
                message_id=message_id,
                text=message.text,
                language=conversation.language,
                epoch=conversation.graph_epoch,
            )
            _run(
                conversation,
                message_id=message_id,
                graph_input=graph_input,
                run=run,
                oidc_access_token=oidc_access_token,
            )
        except SoftTimeLimitExceeded:
            _record_failure(run, "took too long")
            _fail_visibly(conversation, turn_key=f"message:{message_id}", reply_to_id=message_id, error="time limit")
        except Exception as exc:  # noqa: BLE001 — any failure of a turn is told to the person, then re-raised
            _record_failure(run, repr(exc))
            _fail_visibly(conversation, turn_key=f"message:{message_id}", reply_to_id=message_id, error=repr(exc))
            raise
        finally:
            user_message_done(message_id=message_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_WAITS)
def run_decision(self, proposal_id: int, resume: dict, oidc_access_token: str = "") -> None:
    """Resume the graph with the person's decision (`{"kind": "decision", "decision": ...}`) or edited
    values (`{"kind": "edit", "values": ...}`) on a proposal: it executes, says it did nothing, or proposes
    the edited change."""
    proposal = ActionProposal.objects.select_related("conversation__user").get(pk=proposal_id)
    conversation = proposal.conversation
    with conversation_lock(conversation.pk) as acquired:
        if not acquired:
            raise self.retry(countdown=WAIT_COUNTDOWN)
        conversation.refresh_from_db(fields=["status", "graph_epoch"])
        graph_input = decision_input(
            conversation_id=conversation.pk, proposal_id=proposal_id, resume=resume, epoch=conversation.graph_epoch
        )
        if graph_input is NOTHING_TO_RESUME:
            proposal.refresh_from_db(fields=["status"])
            if proposal.status == ActionProposal.Status.CONFIRMED and resume.get("decision") == "confirm":
                # Approved by staff after the graph moved on (the member wrote again meanwhile): carry it out
                # all the same, with the same tool the graph's execute node uses, and say so.
                _execute_approved(conversation, proposal, oidc_access_token=oidc_access_token)
            return  # otherwise the conversation moved on (a newer request set this proposal aside)
        run = _start_run(conversation_id=conversation.pk, proposal_id=proposal_id)
        try:
            run_status_set(conversation_id=conversation.pk, status=Conversation.RunStatus.RUNNING)
            _run(
                conversation,
                message_id=proposal.message_id,
                run=run,
                oidc_access_token=oidc_access_token,
                graph_input=graph_input,
            )
        except Exception as exc:  # noqa: BLE001 — told to the person, then re-raised for the worker's log
            _record_failure(run, repr(exc))
            _fail_visibly(
                conversation, turn_key=f"proposal:{proposal_id}", reply_to_id=proposal.message_id, error=repr(exc)
            )
            raise


def _execute_approved(conversation: Conversation, proposal: ActionProposal, *, oidc_access_token: str) -> None:
    """A proposal approved after the graph stopped waiting for it, carried out with the graph's own tool."""
    from django.utils import timezone

    run = _start_run(conversation_id=conversation.pk, proposal_id=proposal.pk)
    tools = SupportChatTools(
        conversation=conversation,
        message_id=proposal.message_id,
        user_token=user_token_for(conversation.user, oidc_access_token=oidc_access_token),
    )
    started = time.perf_counter()
    try:
        run_status_set(conversation_id=conversation.pk, status=Conversation.RunStatus.RUNNING)
        outcome = tools.execute(proposal_id=proposal.pk)
        tools.say(outcome_text(conversation.language, outcome), key=f"proposal:{proposal.pk}")
        run_status_set(conversation_id=conversation.pk, status=Conversation.RunStatus.DONE)
    except Exception as exc:  # noqa: BLE001 — told to the person, then re-raised for the worker's log
        _record_failure(run, repr(exc))
        _fail_visibly(
            conversation, turn_key=f"proposal:{proposal.pk}", reply_to_id=proposal.message_id, error=repr(exc)
        )
        raise
    run.path = ["execute"]
    run.steps = [{"node": "execute", "ms": round((time.perf_counter() - started) * 1000, 1)}]
    run.status, run.outcome, run.finished_at = AgentRun.Status.DONE, outcome.status, timezone.now()
    run.save(update_fields=["path", "steps", "status", "outcome", "finished_at"])


def _start_run(*, conversation_id: int, message_id: int | None = None, proposal_id: int | None = None) -> AgentRun:
    """A new run record. We hold the conversation's lock, so a run still marked running died with its worker."""
    from django.utils import timezone

    lost = AgentRun.objects.filter(conversation_id=conversation_id, status=AgentRun.Status.RUNNING)
    lost.update(status=AgentRun.Status.FAILED, error="the worker was lost", finished_at=timezone.now())
    attempt = (
        1
        + AgentRun.objects.filter(
            conversation_id=conversation_id, message_id=message_id, proposal_id=proposal_id
        ).count()
    )
    return AgentRun.objects.create(
        conversation_id=conversation_id, message_id=message_id, proposal_id=proposal_id, attempt=attempt
    )


def _record_failure(run: AgentRun, error: str) -> None:
    from django.utils import timezone

    run.status = AgentRun.Status.FAILED
    run.error = error[:2000]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
