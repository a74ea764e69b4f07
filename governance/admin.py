from datetime import UTC

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import FieldDoesNotExist
from django.db.models import DateTimeField
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.timezone import is_aware, localtime
from django.utils.translation import gettext_lazy as _

from governance.models import Membership, Organization, SecurityEvent, User

TIME_FORMAT = "j M Y, H:i:s T"  # one zone on every audit page: TIME_ZONE's, named ("5 Dec 2026, 21:15:18 CET")


def when(value) -> str:
    return date_format(localtime(value), TIME_FORMAT) if value else "-"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Alfred", {"fields": ("platform_role", "preferred_language", "oidc_issuer", "oidc_subject")}),
    )
    list_display = ("username", "first_name", "last_name", "email", "platform_role", "is_active")
    list_filter = ("platform_role", "is_active", "is_staff")


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    inlines = [MembershipInline]


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(AuditlogLogEntryAdmin):
    """django-auditlog's pages with every time in one zone: its own shows the entry's time in TIME_ZONE and
    the changed dates as stored (UTC, without a zone) side by side."""

    @admin.display(description=_("Created"), ordering="timestamp")
    def created(self, obj):
        return when(obj.timestamp)

    @admin.display(description=_("Changes"))
    def msg(self, obj):
        """The changes in a table: choices by their names, times in the same zone and format as the entry's."""
        rows = []
        for name, values in obj.changes_dict.items():
            field = _model_field(obj, name)
            pair = values if isinstance(values, list | tuple) and len(values) == 2 else ("", values)
            rows.append((getattr(field, "verbose_name", name), *(_shown(field, value) for value in pair)))
        header = format_html("<tr><th>{}</th><th>{}</th><th>{}</th></tr>", _("Field"), _("Before"), _("After"))
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table>{}{}</table>", header, body)


def _shown(field, value) -> str:
    if value in (None, "None"):
        return "-"
    if isinstance(field, DateTimeField):
        moment = _stored_datetime(value)
        return when(moment) if moment else str(value)
    choices = dict(getattr(field, "choices", None) or ())
    return str(choices.get(value, value))


def _model_field(entry: LogEntry, name: str):
    model = entry.content_type.model_class() if entry.content_type_id else None
    try:
        return model._meta.get_field(name) if model else None
    except FieldDoesNotExist:
        return None


def _stored_datetime(value):
    """auditlog stores a datetime as UTC text, with or without its offset."""
    parsed = parse_datetime(str(value))
    if parsed is None:
        return None
    return parsed if is_aware(parsed) else parsed.replace(tzinfo=UTC)


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ("when", "kind", "reason", "service", "user", "method", "path", "remote_addr", "correlation_id")
    list_filter = ("kind", "reason", "service")
    list_select_related = ("user",)
    search_fields = ("correlation_id",)

    @admin.display(description=_("When"), ordering="created_at")
    def when(self, obj):
        return when(obj.created_at)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a record of what happened is never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nor deleted, not even by a superuser: retention will be a command of its own
