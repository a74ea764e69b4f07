"""The compliance console (`/compliance/`): the audit trail for compliance officers, every read of it audited.

A compliance officer first says why they consult the trail (kept for the session, changeable at any time);
every page of the trail they read is then recorded as an `AuditRead` with that reason, its filters and page —
sealed into the audit chain like any other audit record.
"""

from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from governance.models import AuditRead, Organization
from governance.selectors import audit_actions, audit_records
from governance.services import audit_read_record

REASON_KEY = "compliance_reason"
PAGE_SIZE = 50


def compliance_required(view):
    """Logged in (else to the login page) and a compliance officer (else a 403 page saying so)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_compliance_officer:
            return render(request, "governance/compliance/officers_only.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def reason_required(view):
    """The officer has said why they read the trail in this session; else they are asked first."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.session.get(REASON_KEY):
            return redirect(f"{reverse('compliance:purpose')}?next={request.get_full_path()}")
        return view(request, *args, **kwargs)

    return wrapper


class TrailFilters(forms.Form):
    actor = forms.CharField(label=_("Who"), required=False, max_length=150)
    organization = forms.ModelChoiceField(
        label=_("Practice"), queryset=Organization.objects.order_by("name"), required=False, empty_label=_("All")
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        required=False,
        choices=[("", _("All")), ("change", _("Changes")), ("security", _("Security events")), ("read", _("Reads"))],
    )
    action = forms.ChoiceField(label=_("Action"), required=False)
    object = forms.CharField(
        label=_("Object"),
        required=False,
        max_length=120,
        help_text=_("A type, or a type and its id: support.calendaraccess, support.actionproposal:12"),
    )
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    correlation_id = forms.CharField(label=_("Correlation id"), required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", _("All"))] + [(action, action) for action in audit_actions()]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError(_("“From” must not be after “Until”."))
        return data


class PurposeForm(forms.Form):
    reason = forms.CharField(
        label=_("Why do you consult the audit trail?"),
        min_length=5,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: quarterly access review, incident 2026-114, a patient's request. It is recorded "
                    "with every page you read."),
    )  # fmt: skip


@compliance_required
@reason_required
def trail(request):
    filters = TrailFilters(request.GET or None)
    values = filters.cleaned_data if filters.is_bound and filters.is_valid() else {}
    values = {name: value for name, value in values.items() if value not in (None, "")}
    page = Paginator(audit_records(**values), PAGE_SIZE).get_page(request.GET.get("page"))
    audit_read_record(
        user=request.user,
        what=AuditRead.What.TRAIL,
        reason=request.session[REASON_KEY],
        target=f"page {page.number}",
        query={name: str(getattr(value, "pk", value)) for name, value in values.items()},
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    context = {
        "filters": filters,
        "filtered": bool(values),
        "page_obj": page,
        "reason": request.session[REASON_KEY],
        "section": "trail",
    }
    return render(request, "governance/compliance/trail.html", context)


@compliance_required
def purpose(request):
    next_url = request.POST.get("next") or request.GET.get("next") or reverse("compliance:trail")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("compliance:trail")
    form = PurposeForm(request.POST or None, initial={"reason": request.session.get(REASON_KEY, "")})
    if request.method == "POST" and form.is_valid():
        request.session[REASON_KEY] = form.cleaned_data["reason"].strip()
        return redirect(next_url)
    return render(request, "governance/compliance/purpose.html", {"form": form, "next": next_url})
