"""Proposals: the exact change Alfred offers, the decisions on it, and its execution — at most once.

A member's decision must come from the person who asked, over their own session, and name the proposal's id
and the hash of its exact arguments: text in a message or an article cannot confirm anything. A proposal
that the approval policy marks then waits for a member of staff (`proposal_approve`, `proposal_refuse`).

Every status change is one conditional UPDATE on the status that was read (so two decisions never both
win, and nothing executes twice) followed by its audit log entry, naming the actor and the decision:
propose, confirm, reject, edit, set_aside, approve, refuse, expire, execute, executed, failed.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.audit import audit_context, audit_update
from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from support.models import ActionProposal, Calendar, CalendarAccess, Conversation
from support.services.chat import event_publish, run_status_set
from support.services.inbox import inbox_changed

Status = ActionProposal.Status
UNDECIDED = (Status.PROPOSED, Status.AWAITING_APPROVAL)


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


def approval_reasons(proposal: ActionProposal) -> list[str]:
    """The rules of settings.STAFF_APPROVAL_RULES that this proposal meets (empty: no approval needed)."""
    rules = set(settings.STAFF_APPROVAL_RULES)
    reasons = []
    if "any" in rules:
        reasons.append("any")
    if "manage_grant" in rules and proposal.action != "revoke" and proposal.arguments.get("level") == "manage":
        reasons.append("manage_grant")
    if "revoke" in rules and proposal.action == "revoke":
        reasons.append("revoke")
    if "delegated_manager" in rules:
        owner_id = Calendar.objects.filter(pk=proposal.arguments["calendar_id"]).values_list("owner_id", flat=True)
        if owner_id.first() != proposal.requested_by_id:
            reasons.append("delegated_manager")
    return reasons


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
    done: str = "",
) -> ActionProposal:
    """Store a proposal and show it (a `form` event). The same request in a retried run returns the same one."""
    digest = arguments_hash({"action": action, **arguments})
    existing = ActionProposal.objects.filter(message_id=message_id, arguments_hash=digest).first()
    if existing is not None:
        return existing
    organization_id = Conversation.objects.values_list("organization_id", flat=True).get(pk=conversation_id)
    audit_data = {"decision": "propose", "organization": organization_id}
    with transaction.atomic(), audit_context(actor=requested_by, service="agents", data=audit_data):
        proposal = ActionProposal.objects.create(
            conversation_id=conversation_id,
            message_id=message_id,
            requested_by=requested_by,
            action=action,
            arguments=arguments,
            arguments_hash=digest,
            summary=summary,
            done=done,
            before={"level": before},
            after={"level": arguments.get("level")},
            state_version=state_version(
                calendar_id=arguments["calendar_id"], user_id=arguments["user_id"], level=before
            ),
            expires_at=timezone.now() + timedelta(seconds=settings.CHAT_PROPOSAL_TTL),
        )
        event_publish(conversation_id=conversation_id, type="form", payload=proposal_payload(proposal, fields=fields))
    return proposal


def _transition(proposal: ActionProposal, status: str, *, actor, decision: str, data: dict | None = None, **fields):
    """Move the proposal from the status it was read with to `status` (one conditional UPDATE), and log it.

    False when another decision got there first: nothing is changed or logged then.
    """
    before = {"status": proposal.status, **{name: getattr(proposal, name) for name in fields}}
    updated = ActionProposal.objects.filter(pk=proposal.pk, status=proposal.status).update(status=status, **fields)
    if not updated:
        return False
    proposal.status = status
    for name, value in fields.items():
        setattr(proposal, name, value)
    changes = {
        name: (before[name], getattr(proposal, name)) for name in before if before[name] != getattr(proposal, name)
    }
    if ActionProposal.conversation.is_cached(proposal):
        organization = proposal.conversation.organization_id
    else:
        organization = Conversation.objects.values_list("organization_id", flat=True).get(pk=proposal.conversation_id)
    audit_update(
        proposal,
        actor=actor,
        changes=changes,
        data={"decision": decision, "organization": organization, **(data or {})},
    )
    return True


def _publish_result(proposal: ActionProposal, **extra) -> None:
    payload = {
        "proposal": proposal.pk,
        "status": proposal.status,
        "code": proposal.result_code,
        "summary": proposal.summary,
        "done": proposal.done,  # what the form says once it is executed
        **extra,
    }
    event_publish(conversation_id=proposal.conversation_id, type="result", payload=payload)


def _expire(proposal: ActionProposal, *, actor=None, code: str = "expired") -> bool:
    """Expired, set aside or withdrawn: it can no longer be confirmed, approved or executed."""
    done = _transition(proposal, Status.EXPIRED, actor=actor, decision="expire", result_code=code)
    if done:
        _publish_result(proposal)
    return done


def proposal_get_for_user(*, user, proposal_id: int) -> ActionProposal:
    """A proposal of one of the user's own conversations; NotFound for anyone else's."""
    proposal = ActionProposal.objects.select_related("conversation").filter(pk=proposal_id).first()
    if proposal is None or proposal.conversation.user_id != user.pk:
        raise NotFound("No such proposal.")
    return proposal


def _check_hash(proposal: ActionProposal, hash: str) -> None:
    if hash != proposal.arguments_hash:
        raise ValidationFailed("This form no longer matches the proposal; reload it.", code="stale_proposal")


def proposal_decide(*, user, proposal_id: int, hash: str, decision: str) -> ActionProposal:
    """Record the member's confirm / reject. One decision per proposal: a second one is a Conflict.

    A confirmation that the approval policy catches waits for staff (awaiting_approval, with a longer expiry);
    the caller runs any other confirmation at once.
    """
    if decision not in ("confirm", "reject"):
        raise ValidationFailed("The decision must be confirm or reject.", code="invalid_decision")
    proposal = proposal_get_for_user(user=user, proposal_id=proposal_id)
    _check_hash(proposal, hash)
    if proposal.status != Status.PROPOSED:
        raise Conflict("This proposal was already decided.", code="already_decided")
    now = timezone.now()
    if proposal.expires_at <= now:
        _expire(proposal, actor=user)
        raise Conflict("This proposal has expired; nothing was changed.", code="expired")
    if decision == "reject":
        done = _transition(proposal, Status.REJECTED, actor=user, decision="reject", decided_at=now)
    elif reasons := approval_reasons(proposal):
        done = _transition(
            proposal,
            Status.AWAITING_APPROVAL,
            actor=user,
            decision="confirm",
            decided_at=now,
            approval_reasons=reasons,
            expires_at=now + timedelta(seconds=settings.STAFF_APPROVAL_TTL),
        )
    else:
        done = _transition(proposal, Status.CONFIRMED, actor=user, decision="confirm", decided_at=now)
    if not done:
        raise Conflict("This proposal was already decided.", code="already_decided")
    if proposal.status == Status.REJECTED:  # final now; a confirmation's result comes with its execution
        _publish_result(proposal)
    elif proposal.status == Status.AWAITING_APPROVAL:
        _publish_result(proposal, reasons=proposal.approval_reasons)
        run_status_set(conversation_id=proposal.conversation_id, status=Conversation.RunStatus.WAITING_APPROVAL)
        inbox_changed(conversation_id=proposal.conversation_id, reason="approval")
    return proposal


def proposal_edit(*, user, proposal_id: int, hash: str, values: dict) -> ActionProposal:
    """The person changed fields of the form: this proposal is set aside, and the edited request goes back
    through `resolve` (so the new values are checked against real data) to a new proposal to confirm."""
    proposal = proposal_get_for_user(user=user, proposal_id=proposal_id)
    _check_hash(proposal, hash)
    allowed = {"member", "calendar", "level"}
    if not values or not set(values) <= allowed:
        raise ValidationFailed("Editable fields are member, calendar and level.", code="invalid_values")
    if proposal.status != Status.PROPOSED or not _transition(
        proposal, Status.EXPIRED, actor=user, decision="edit", result_code="edited", decided_at=timezone.now()
    ):
        raise Conflict("This proposal was already decided.", code="already_decided")
    _publish_result(proposal)
    return proposal


def proposal_set_aside(*, proposal_id: int, actor=None, code: str = "set_aside") -> None:
    """A newer request replaces a proposal the member has not decided on. One they confirmed (waiting for staff
    approval) stays: a follow-up message must not withdraw it; it runs when approved (tasks.run_decision)."""
    proposal = ActionProposal.objects.filter(pk=proposal_id, status=Status.PROPOSED).first()
    if proposal is not None:
        _expire(proposal, actor=actor, code=code)


def proposals_set_aside(*, conversation_id: int, actor, code: str, only_unconfirmed: bool = False) -> int:
    """The undecided proposals of a conversation (a take-over, a hand-back, a close): none goes stale.
    `only_unconfirmed` keeps those the member confirmed and that wait for staff approval."""
    count = 0
    statuses = (Status.PROPOSED,) if only_unconfirmed else UNDECIDED
    for proposal in ActionProposal.objects.filter(conversation_id=conversation_id, status__in=statuses):
        count += _expire(proposal, actor=actor, code=code)
    return count


# --- staff approval ---------------------------------------------------------------------------------


def _reviewable(*, staff, proposal_id: int, hash: str) -> ActionProposal:
    if not getattr(staff, "is_support_staff", False):
        raise NotAllowed("Only support staff review proposals.", code="not_support_staff")
    proposal = ActionProposal.objects.select_related("conversation", "requested_by").filter(pk=proposal_id).first()
    if proposal is None:
        raise NotFound("No such proposal.")
    if proposal.requested_by_id == staff.pk:
        raise NotAllowed("You cannot approve or reject a change that you asked for.", code="own_proposal")
    _check_hash(proposal, hash)
    if proposal.status != Status.AWAITING_APPROVAL:
        raise Conflict("This proposal is not waiting for approval any more.", code="already_reviewed")
    if proposal.expires_at <= timezone.now():
        _expire(proposal)
        raise Conflict("This proposal has expired; nothing was changed.", code="expired")
    return proposal


def proposal_approve(*, staff, proposal_id: int, hash: str) -> ActionProposal:
    """A member of staff approves a confirmed proposal: it runs as the member asked, on the member's authority.

    Refused when the approver asked for it, when the form's hash is not the proposal's, when it expired, and
    when the access it changes moved on since it was proposed (then it fails: nothing would be done as shown).
    """
    from support.tasks import run_decision

    proposal = _reviewable(staff=staff, proposal_id=proposal_id, hash=hash)
    args = proposal.arguments
    current = (
        CalendarAccess.objects.filter(calendar_id=args["calendar_id"], user_id=args["user_id"])
        .values_list("level", flat=True)
        .first()
    )
    if state_version(calendar_id=args["calendar_id"], user_id=args["user_id"], level=current) != proposal.state_version:
        if _transition(proposal, Status.FAILED, actor=staff, decision="approve", result_code="state_changed"):
            _publish_result(proposal)
            run_status_set(conversation_id=proposal.conversation_id, status=Conversation.RunStatus.DONE)
        raise Conflict("The access changed since this was proposed; nothing was changed.", code="state_changed")
    if not _transition(
        proposal,
        Status.CONFIRMED,
        actor=staff,
        decision="approve",
        reviewed_by=staff,
        reviewed_at=timezone.now(),
        data={"requested_by": proposal.requested_by_id},
    ):
        raise Conflict("This proposal is not waiting for approval any more.", code="already_reviewed")
    _publish_result(proposal, code="approved", reviewer=staff.display_name)
    inbox_changed(conversation_id=proposal.conversation_id, reason="approval")
    token = member_token_take(proposal_id=proposal.pk)
    resume = {"kind": "decision", "decision": "confirm"}
    transaction.on_commit(lambda: run_decision.delay(proposal.pk, resume, token))
    return proposal


def proposal_refuse(*, staff, proposal_id: int, hash: str, reason: str) -> ActionProposal:
    """A member of staff rejects a confirmed proposal, with a reason the member reads. Nothing is changed."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why you reject it: the member reads the reason.", code="reason_required")
    proposal = _reviewable(staff=staff, proposal_id=proposal_id, hash=hash)
    if not _transition(
        proposal,
        Status.REJECTED,
        actor=staff,
        decision="refuse",
        result_code="refused",
        reviewed_by=staff,
        reviewed_at=timezone.now(),
        review_reason=reason[:2000],
    ):
        raise Conflict("This proposal is not waiting for approval any more.", code="already_reviewed")
    _publish_result(proposal, reason=proposal.review_reason, reviewer=staff.display_name)
    run_status_set(conversation_id=proposal.conversation_id, status=Conversation.RunStatus.DONE)
    inbox_changed(conversation_id=proposal.conversation_id, reason="approval")
    member_token_take(proposal_id=proposal.pk)
    return proposal


def _token_key(proposal_id: int) -> str:
    return f"proposal-member-token:{proposal_id}"


def member_token_keep(*, proposal_id: int, token: str) -> None:
    """OIDC mode: the member's identity-provider access token waits (in Redis, until the proposal expires) for
    the approval, whose execution runs on the member's authority. Local mode needs none: the worker mints one."""
    from django.core.cache import cache

    if token:
        cache.set(_token_key(proposal_id), token, timeout=settings.STAFF_APPROVAL_TTL)


def member_token_take(*, proposal_id: int) -> str:
    from django.core.cache import cache

    token = cache.get(_token_key(proposal_id)) or ""
    cache.delete(_token_key(proposal_id))
    return token


# --- execution --------------------------------------------------------------------------------------


def _finish(proposal: ActionProposal, status: str, *, code: str = "", detail: str = "") -> ActionProposal:
    fields = {"result_code": code, "result_detail": detail}
    if status == Status.EXECUTED:
        fields["executed_at"] = timezone.now()
    actor = proposal.requested_by if status != Status.EXPIRED else None
    decision = {Status.EXECUTED: "executed", Status.EXPIRED: "expire"}.get(status, "failed")
    if _transition(proposal, status, actor=actor, decision=decision, data=_approver(proposal), **fields):
        _publish_result(proposal)
    return proposal


def _approver(proposal: ActionProposal) -> dict:
    return {"approved_by": proposal.reviewed_by_id} if proposal.reviewed_by_id else {}


def proposal_execute(*, proposal_id: int, client) -> ActionProposal:
    """Carry out a confirmed proposal through the platform API (`client`, as the confirming person).

    confirmed → executing is one conditional UPDATE: a retried task or a double click never gets here twice.
    A run that died while executing resumes from the state: already at the target, it is done; still at
    the state the proposal was computed from, it is applied; anything else, it is refused. The API call names
    the proposal, so the access change's audit entry links to it.
    """
    from support.platform_client import APIRefusal

    proposal = ActionProposal.objects.select_related("requested_by").get(pk=proposal_id)
    if proposal.status == Status.CONFIRMED:
        _transition(
            proposal, Status.EXECUTING, actor=proposal.requested_by, decision="execute", data=_approver(proposal)
        )
        proposal.refresh_from_db()
    if proposal.status != Status.EXECUTING:
        return proposal  # executed, rejected, expired or failed already
    if proposal.expires_at <= timezone.now():
        return _finish(proposal, Status.EXPIRED, code="expired")
    calendar_id, user_id, target = (proposal.arguments[k] for k in ("calendar_id", "user_id", "level"))
    try:
        current = next((a["level"] for a in client.accesses(calendar_id) if a["user"]["id"] == user_id), None)
        if current == target:
            return _finish(proposal, Status.EXECUTED)
        if state_version(calendar_id=calendar_id, user_id=user_id, level=current) != proposal.state_version:
            return _finish(proposal, Status.FAILED, code="state_changed")
        if proposal.action == "revoke":
            client.revoke_access(calendar_id, user_id, proposal_id=proposal.pk)
        else:
            client.set_access(calendar_id, user_id, target, proposal_id=proposal.pk)
    except APIRefusal as refusal:
        return _finish(proposal, Status.FAILED, code="api_refused", detail=refusal.detail)
    return _finish(proposal, Status.EXECUTED)
