"""Proposals: the exact change Alfred offers, the person's decision, and its execution — at most once.

A decision must come from the person who asked, over their own session, and name the proposal's id and
the hash of its exact arguments: text in a message or an article cannot confirm anything.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.errors import Conflict, NotFound, ValidationFailed
from support.models import ActionProposal
from support.services.chat import event_publish


def arguments_hash(arguments: dict) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def state_version(*, calendar_id: int, user_id: int, level: str | None) -> str:
    """The part of the state a proposal depends on: the member's current level on the calendar."""
    return hashlib.sha256(f"{calendar_id}:{user_id}:{level or '-'}".encode()).hexdigest()


def proposal_payload(proposal: ActionProposal, *, fields: dict | None = None) -> dict:
    return {
        "kind": "proposal",
        "proposal": {
            "id": proposal.pk,
            "hash": proposal.arguments_hash,
            "action": proposal.action,
            "summary": proposal.summary,
            "status": proposal.status,
            "expires_at": proposal.expires_at.isoformat(),
            "fields": fields or {},
        },
    }


def proposal_create(
    *,
    conversation_id: int,
    message_id: int,
    requested_by,
    action: str,
    arguments: dict,
    summary: str,
    before: str | None,
    fields: dict,
) -> ActionProposal:
    """Store a proposal and show it (a `form` event). The same request in a retried run returns the same one."""
    digest = arguments_hash({"action": action, **arguments})
    existing = ActionProposal.objects.filter(message_id=message_id, arguments_hash=digest).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        proposal = ActionProposal.objects.create(
            conversation_id=conversation_id,
            message_id=message_id,
            requested_by=requested_by,
            action=action,
            arguments=arguments,
            arguments_hash=digest,
            summary=summary,
            before={"level": before},
            after={"level": arguments.get("level")},
            state_version=state_version(
                calendar_id=arguments["calendar_id"], user_id=arguments["user_id"], level=before
            ),
            expires_at=timezone.now() + timedelta(seconds=settings.CHAT_PROPOSAL_TTL),
        )
        event_publish(conversation_id=conversation_id, type="form", payload=proposal_payload(proposal, fields=fields))
    return proposal


def proposal_get_for_user(*, user, proposal_id: int) -> ActionProposal:
    """A proposal of one of the user's own conversations; NotFound for anyone else's."""
    proposal = ActionProposal.objects.select_related("conversation").filter(pk=proposal_id).first()
    if proposal is None or proposal.conversation.user_id != user.pk:
        raise NotFound("No such proposal.")
    return proposal


def proposal_decide(*, user, proposal_id: int, hash: str, decision: str) -> ActionProposal:
    """Record the person's confirm / reject. One decision per proposal: a second one is a Conflict."""
    if decision not in ("confirm", "reject"):
        raise ValidationFailed("The decision must be confirm or reject.", code="invalid_decision")
    proposal = proposal_get_for_user(user=user, proposal_id=proposal_id)
    if hash != proposal.arguments_hash:
        raise ValidationFailed("This form no longer matches the proposal; reload it.", code="stale_proposal")
    if proposal.status == ActionProposal.Status.PROPOSED and proposal.expires_at <= timezone.now():
        _finish(proposal, ActionProposal.Status.EXPIRED, code="expired")
        raise Conflict("This proposal has expired; nothing was changed.", code="expired")
    status = ActionProposal.Status.CONFIRMED if decision == "confirm" else ActionProposal.Status.REJECTED
    updated = ActionProposal.objects.filter(pk=proposal.pk, status=ActionProposal.Status.PROPOSED).update(
        status=status, decided_at=timezone.now()
    )
    if not updated:
        raise Conflict("This proposal was already decided.", code="already_decided")
    proposal.refresh_from_db()
    if status == ActionProposal.Status.REJECTED:  # final now; a confirmation's result comes with its execution
        event_publish(
            conversation_id=proposal.conversation_id,
            type="result",
            payload={"proposal": proposal.pk, "status": status, "code": "", "summary": proposal.summary},
        )
    return proposal


def proposal_edit(*, user, proposal_id: int, hash: str, values: dict) -> ActionProposal:
    """The person changed fields of the form: this proposal is set aside, and the edited request goes back
    through `resolve` (so the new values are checked against real data) to a new proposal to confirm."""
    proposal = proposal_get_for_user(user=user, proposal_id=proposal_id)
    if hash != proposal.arguments_hash:
        raise ValidationFailed("This form no longer matches the proposal; reload it.", code="stale_proposal")
    allowed = {"member", "calendar", "level"}
    if not values or not set(values) <= allowed:
        raise ValidationFailed("Editable fields are member, calendar and level.", code="invalid_values")
    updated = ActionProposal.objects.filter(pk=proposal.pk, status=ActionProposal.Status.PROPOSED).update(
        status=ActionProposal.Status.EXPIRED, result_code="edited", decided_at=timezone.now()
    )
    if not updated:
        raise Conflict("This proposal was already decided.", code="already_decided")
    proposal.refresh_from_db()
    event_publish(
        conversation_id=proposal.conversation_id,
        type="result",
        payload={"proposal": proposal.pk, "status": proposal.status, "code": "edited", "summary": proposal.summary},
    )
    return proposal


def proposal_set_aside(*, proposal_id: int) -> None:
    """A newer request replaced an undecided proposal: it can no longer be confirmed."""
    proposal = ActionProposal.objects.filter(pk=proposal_id, status=ActionProposal.Status.PROPOSED).first()
    if proposal is not None:
        _finish(proposal, ActionProposal.Status.EXPIRED, code="set_aside")


def _finish(proposal: ActionProposal, status: str, *, code: str = "", detail: str = "") -> ActionProposal:
    proposal.status = status
    proposal.result_code = code
    proposal.result_detail = detail
    fields = ["status", "result_code", "result_detail"]
    if status == ActionProposal.Status.EXECUTED:
        proposal.executed_at = timezone.now()
        fields.append("executed_at")
    proposal.save(update_fields=fields)
    event_publish(
        conversation_id=proposal.conversation_id,
        type="result",
        payload={"proposal": proposal.pk, "status": status, "code": code, "summary": proposal.summary},
    )
    return proposal


def proposal_execute(*, proposal_id: int, client) -> ActionProposal:
    """Carry out a confirmed proposal through the platform API (`client`, as the confirming person).

    confirmed → executing is one conditional UPDATE: a retried task or a double click never gets here twice.
    A run that died while executing resumes from the state: already at the target, it is done; still at
    the state the proposal was computed from, it is applied; anything else, it is refused.
    """
    from support.platform_client import APIRefusal

    ActionProposal.objects.filter(pk=proposal_id, status=ActionProposal.Status.CONFIRMED).update(
        status=ActionProposal.Status.EXECUTING
    )
    proposal = ActionProposal.objects.get(pk=proposal_id)
    if proposal.status != ActionProposal.Status.EXECUTING:
        return proposal  # executed, rejected, expired or failed already
    if proposal.expires_at <= timezone.now():
        return _finish(proposal, ActionProposal.Status.EXPIRED, code="expired")
    calendar_id, user_id, target = (proposal.arguments[k] for k in ("calendar_id", "user_id", "level"))
    try:
        current = next((a["level"] for a in client.accesses(calendar_id) if a["user"]["id"] == user_id), None)
        if current == target:
            return _finish(proposal, ActionProposal.Status.EXECUTED)
        if state_version(calendar_id=calendar_id, user_id=user_id, level=current) != proposal.state_version:
            return _finish(proposal, ActionProposal.Status.FAILED, code="state_changed")
        if proposal.action == "revoke":
            client.revoke_access(calendar_id, user_id)
        else:
            client.set_access(calendar_id, user_id, target)
    except APIRefusal as refusal:
        return _finish(proposal, ActionProposal.Status.FAILED, code="api_refused", detail=refusal.detail)
    return _finish(proposal, ActionProposal.Status.EXECUTED)
