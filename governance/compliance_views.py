"""The compliance console (`/compliance/`): the audit trail for compliance officers, every read of it audited.

A compliance officer first says why they consult the trail (kept for the session, changeable at any time);
every page of the trail they read is then recorded as an `AuditRead` with that reason, its filters and page —
sealed into the audit chain like any other audit record.
"""

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from governance.exports import CONTENT_TYPES, EXTENSIONS, audit_export_download_record, audit_export_request
from governance.models import AuditExport, AuditRead, Organization
from governance.selectors import audit_actions, audit_exports, audit_records
from governance.services import audit_read_record

REASON_KEY = "compliance_reason"
PAGE_SIZE = 50
ACTIONS_CACHE_SECONDS = 300


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
            return redirect(f"{reverse('compliance:purpose')}?{urlencode({'next': request.get_full_path()})}")
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
    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"list": "audit-actions", "autocomplete": "off"}),
    )
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
        # Suggestions only (any action can be typed): a DISTINCT over the whole trail, cached for a few minutes
        # rather than run on every page read.
        self.actions = cache.get_or_set("compliance:audit-actions", audit_actions, ACTIONS_CACHE_SECONDS)

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


def _filter_values(filters: TrailFilters) -> dict:
    values = filters.cleaned_data if filters.is_bound and filters.is_valid() else {}
    return {name: value for name, value in values.items() if value not in (None, "")}


def _query(values: dict) -> dict:
    """Filters as stored with a read or an export: text (a practice by its id, dates in ISO form)."""
    return {name: str(getattr(value, "pk", value)) for name, value in values.items()}


@compliance_required
@reason_required
def trail(request):
    filters = TrailFilters(request.GET or None)
    values = _filter_values(filters)
    page = Paginator(audit_records(**values), PAGE_SIZE).get_page(request.GET.get("page"))
    audit_read_record(
        user=request.user,
        what=AuditRead.What.TRAIL,
        reason=request.session[REASON_KEY],
        target=f"page {page.number}",
        query=_query(values),
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    context = {
        "export_formats": AuditExport.Format.choices,
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


@compliance_required
@reason_required
@require_POST
def export_request(request):
    """Export the trail as filtered on the page (the filters come with the form), in the chosen format."""
    filters = TrailFilters(request.POST)
    if not filters.is_valid():
        messages.error(request, gettext("These filters are not valid; nothing was exported."))
        return redirect("compliance:trail")
    format_ = request.POST.get("format")
    if format_ not in AuditExport.Format.values:
        messages.error(request, gettext("Choose CSV, JSON or FHIR."))
        return redirect("compliance:trail")
    export = audit_export_request(
        user=request.user,
        format=format_,
        query=_query(_filter_values(filters)),
        reason=request.session[REASON_KEY],
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    messages.success(request, gettext("Export #%(id)s is on its way: it shows below as it runs.") % {"id": export.pk})
    return redirect("compliance:exports")


@compliance_required
@reason_required
def exports(request):
    page = Paginator(audit_exports(), 20).get_page(request.GET.get("page"))
    running = any(export.status in ("queued", "running") for export in page.object_list)
    context = {"page_obj": page, "running": running, "section": "exports"}
    return render(request, "governance/compliance/exports.html", context)


@compliance_required
@reason_required
def export_download(request, export_id: int):
    export = AuditExport.objects.filter(pk=export_id, status=AuditExport.Status.DONE).first()
    if export is None or not export.path:
        raise Http404("No such export, or not written yet.")
    try:
        file = open(export.path, "rb")  # noqa: SIM115 — FileResponse closes it
    except OSError:
        raise Http404("The export's file is gone; ask for it again.") from None
    audit_export_download_record(
        export=export,
        user=request.user,
        reason=request.session[REASON_KEY],
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    name = f"alfred-audit-{export.pk}.{EXTENSIONS[export.format]}"
    return FileResponse(file, as_attachment=True, filename=name, content_type=CONTENT_TYPES[export.format])
