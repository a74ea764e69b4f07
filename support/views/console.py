"""The support console: the inbox, one conversation (transcript, agent trace, take-over, replies, hand-back,
close), and the approval queue. Server-rendered; static/support/console.js refreshes the parts that change
when the console socket (/ws/console/) says so, and sends replies without a reload.

Every write goes through support.services; a refused one (someone else took the conversation, a proposal
decided meanwhile) comes back as a message on the page, never as an error page.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from governance.errors import AlfredError
from governance.models import AuditRead, Organization
from governance.services import audit_read_record
from knowledge.views import staff_required
from support.models import AccessLevel, Conversation
from support.selectors import (
    INBOX_STATES,
    InboxFilters,
    approval_queue,
    conversation_for_staff,
    conversation_transcript,
    inbox_conversations,
    inbox_counts,
)
from support.services.handoff import (
    conversation_close,
    conversation_hand_back,
    conversation_take_over,
    staff_message_send,
)
from support.services.proposals import proposal_approve, proposal_refuse

CONVERSATIONS_PER_PAGE = 25
PROPOSALS_PER_PAGE = 25


def state_names() -> dict[str, str]:
    return {
        "handed_off": _("Waiting for a person"),
        "approval": _("Waiting for approval"),
        "with_staff": _("With support staff"),
        "open": _("With Alfred"),
        "closed": _("Closed"),
    }


def _live(request) -> bool:
    """console.js re-reading the page: leave the one-time messages for the page that acted."""
    return request.GET.get("live") == "1"


def console_strings() -> dict:
    """The sentences console.js shows (translated here, handed over with json_script)."""
    return {
        "connecting": _("Connecting…"),
        "live": _("Live"),
        "reconnecting": _("Reconnecting…"),
        "ended": _("Your session has ended. Log in again."),
        "sending": _("Sending…"),
        "failed": _("Not sent: check your connection and send it again."),
    }


def _for_review(proposals) -> None:
    """What a proposal's review shows: why it needs approval, in words, and its exact arguments as JSON."""
    names = reason_names()
    for proposal in proposals:
        proposal.reason_words = [str(names.get(reason, reason)) for reason in proposal.approval_reasons or []]
        proposal.arguments_json = json.dumps(proposal.arguments, sort_keys=True)
        proposal.before_label = _level_label((proposal.before or {}).get("level"))
        proposal.after_label = _level_label((proposal.after or {}).get("level"))


def _level_label(level: str | None) -> str:
    """A level as the member's form names it ("Book"), or "No access"."""
    return str(AccessLevel(level).label) if level in AccessLevel.values else _("No access")


def reason_names() -> dict[str, str]:
    """Why a proposal needs approval (settings.STAFF_APPROVAL_RULES), in words."""
    return {
        "manage_grant": _("gives manage access"),
        "delegated_manager": _("asked by a manager who does not own the calendar"),
        "revoke": _("removes access"),
        "any": _("every change needs approval"),
    }


DATE_INPUT = forms.DateInput({"type": "date"})


class InboxFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=200)
    organization = forms.ModelChoiceField(
        label=gettext_lazy("Practice"), required=False, queryset=Organization.objects.order_by("name")
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        choices=[("", gettext_lazy("Any")), ("en", "English"), ("fr", "Français")],
    )
    since = forms.DateField(label=gettext_lazy("Active from"), required=False, widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(
        label=gettext_lazy("Active until"), required=False, widget=forms.DateInput({"type": "date"})
    )


@require_GET
@staff_required
def inbox(request):
    """Conversations by state, filtered and paginated (console.js re-reads the list when one changes)."""
    state = request.GET.get("state") if request.GET.get("state") in INBOX_STATES else INBOX_STATES[0]
    form = InboxFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    filters = InboxFilters(
        state=state,
        organization_id=data["organization"].pk if data.get("organization") else None,
        language=data.get("language") or "",
        since=data.get("since"),
        until=data.get("until"),
        q=data.get("q") or "",
    )
    page = Paginator(inbox_conversations(filters=filters), CONVERSATIONS_PER_PAGE).get_page(request.GET.get("page"))
    names = state_names()
    context = {
        "page_obj": page,
        "state": state,
        "state_name": names[state],
        "tabs": [(key, names[key], count) for key, count in _ordered_counts()],
        "filters": form,
        "filtered": any([filters.q, filters.organization_id, filters.language, filters.since, filters.until]),
        "console_strings": console_strings(),
        "live": _live(request),
    }
    return render(request, "support/console/inbox.html", context)


def _ordered_counts():
    counts = inbox_counts()
    return [(key, counts.get(key, 0)) for key in INBOX_STATES]


@require_GET
@staff_required
def conversation(request, conversation_id: int):
    """One conversation as staff see it: the transcript with its trace, and what they can do with it."""
    found = conversation_for_staff(conversation_id=conversation_id)
    if found is None:
        raise Http404("No such conversation.")
    transcript = conversation_transcript(conversation=found)
    _for_review(transcript["proposals"])
    if not _live(request):  # a live re-read of a page already open is not a new reading
        audit_read_record(
            user=request.user,
            what=AuditRead.What.TRANSCRIPT,
            reason=f"support console, conversation state: {found.get_status_display()}",
            target=f"conversation {found.pk}",
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
    context = {
        "conversation": found,
        "transcript": transcript,
        "mine": found.status == Conversation.Status.WITH_STAFF and found.assignee_id == request.user.pk,
        "console_strings": console_strings(),
        "live": _live(request),
        "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
    }
    return render(request, "support/console/conversation.html", context)


@require_GET
@staff_required
def approvals(request):
    """Proposals waiting for approval, oldest first, with their plain words, exact arguments and why."""
    page = Paginator(approval_queue(), PROPOSALS_PER_PAGE).get_page(request.GET.get("page"))
    _for_review(page.object_list)
    context = {"page_obj": page, "console_strings": console_strings(), "live": _live(request)}
    return render(request, "support/console/approvals.html", context)


def _back(request, default: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _act(request, action, success: str, default: str, **kwargs):
    try:
        action(staff=request.user, **kwargs)
    except AlfredError as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(request, success)
    return _back(request, default)


@require_POST
@staff_required
def take_over(request, conversation_id: int):
    default = reverse("console:conversation", args=[conversation_id])
    return _act(
        request,
        conversation_take_over,
        _("You have taken this conversation over: Alfred no longer answers in it."),
        default,
        conversation_id=conversation_id,
    )


@require_POST
@staff_required
def hand_back(request, conversation_id: int):
    default = reverse("console:conversation", args=[conversation_id])
    return _act(
        request,
        conversation_hand_back,
        _("Handed back to Alfred: it answers the member's next message."),
        default,
        conversation_id=conversation_id,
    )


@require_POST
@staff_required
def close(request, conversation_id: int):
    default = reverse("console:conversation", args=[conversation_id])
    return _act(request, conversation_close, _("Conversation closed."), default, conversation_id=conversation_id)


@require_POST
@staff_required
def reply(request, conversation_id: int):
    """A staff reply: JSON for console.js (`{"message"}` or `{"code", "detail"}`), a redirect for a plain form."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        message, _created = staff_message_send(
            staff=request.user,
            conversation_id=conversation_id,
            text=request.POST.get("text", ""),
            client_id=request.POST.get("client_id", "")[:64],
        )
    except AlfredError as refusal:
        if wants_json:
            return JsonResponse({"code": refusal.code, "detail": refusal.detail}, status=refusal.status)
        messages.error(request, refusal.detail)
    else:
        if wants_json:
            return JsonResponse({"message": {"id": message.pk, "text": message.text}})
    return redirect("console:conversation", conversation_id=conversation_id)


@require_POST
@staff_required
def approve(request, proposal_id: int):
    return _act(
        request,
        proposal_approve,
        _("Approved: the change is being made for the member."),
        reverse("console:approvals"),
        proposal_id=proposal_id,
        hash=request.POST.get("hash", ""),
    )


@require_POST
@staff_required
def refuse(request, proposal_id: int):
    return _act(
        request,
        proposal_refuse,
        _("Rejected: the member sees your reason; nothing was changed."),
        reverse("console:approvals"),
        proposal_id=proposal_id,
        hash=request.POST.get("hash", ""),
        reason=request.POST.get("reason", ""),
    )
