"""Identity and policy: users, practices (organizations), memberships, security events."""

from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from governance.correlation import current_or_blank


class User(AbstractUser):
    """A person who logs in: a member of one or more practices, support staff, or a compliance officer.

    Users who log in through OIDC are matched by (issuer, subject), never by e-mail.
    """

    class PlatformRole(models.TextChoices):
        MEMBER = "member", _("Practice member")
        SUPPORT = "support", _("Support staff")
        COMPLIANCE = "compliance", _("Compliance officer")

    platform_role = models.CharField(max_length=20, choices=PlatformRole.choices, default=PlatformRole.MEMBER)
    preferred_language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True, default="")
    oidc_issuer = models.CharField(max_length=255, blank=True, default="")
    oidc_subject = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["oidc_issuer", "oidc_subject"],
                condition=~Q(oidc_subject=""),
                name="user_unique_oidc_identity",
            )
        ]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_support_staff(self) -> bool:
        return self.platform_role == self.PlatformRole.SUPPORT or self.is_superuser

    @property
    def is_compliance_officer(self) -> bool:
        return self.platform_role == self.PlatformRole.COMPLIANCE


class Organization(models.Model):
    """A practice: its members share calendars and can be given access to each other's."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in a practice. Inactive members keep their history but can act on nothing."""

    class Role(models.TextChoices):
        PRACTITIONER = "practitioner", _("Practitioner")
        SECRETARY = "secretary", _("Secretary")
        ASSISTANT = "assistant", _("Assistant")
        ADMIN = "admin", _("Practice administrator")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class SecurityEvent(models.Model):
    """A login, or a refused token, caller, access or login: who tried what, from where, and why it was refused."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=40)  # e.g. login, login_failed, service_token_refused, caller_not_allowed
    reason = models.CharField(max_length=80)  # a stable code, e.g. "expired", "bad_audience"
    detail = models.TextField(blank=True, default="")
    service = models.CharField(max_length=100, blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    method = models.CharField(max_length=10, blank=True, default="")
    path = models.CharField(max_length=500, blank=True, default="")
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, default=current_or_blank, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


auditlog.register(User, exclude_fields=["password", "last_login"])
auditlog.register(Organization)
auditlog.register(Membership)


class AuditSeal(models.Model):
    """One link of the audit trail's hash chain (see governance.audit_chain): written with the audit record it
    seals, in the same transaction; never updated, never deleted (a database trigger refuses it)."""

    seq = models.PositiveBigIntegerField(unique=True)
    kind = models.CharField(max_length=20)  # logentry | securityevent | auditread
    record_id = models.BigIntegerField()
    record_hash = models.CharField(max_length=64)
    previous = models.CharField(max_length=64, unique=True)  # the hash of the seal before (a fork is impossible)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["kind", "record_id"], name="auditseal_one_per_record")]

    def __str__(self) -> str:
        return f"seal {self.seq}: {self.kind} {self.record_id}"


class AuditRead(models.Model):
    """A sensitive read: who read what in the compliance console, when and why. Audited like a change (sealed
    into the audit chain, append-only): reading the trail, an agent action's chain or an export leaves a trace."""

    class What(models.TextChoices):
        TRAIL = "trail", _("Audit trail")
        CHAIN = "chain", _("Chain of an agent action")
        EXPORT = "export", _("Export")
        TRANSCRIPT = "transcript", _("Transcript")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    what = models.CharField(max_length=20, choices=What.choices)
    target = models.CharField(max_length=200, blank=True, default="")  # e.g. "proposal 12"
    query = models.JSONField(default=dict, blank=True)  # the filters of the view that was read
    reason = models.TextField()
    correlation_id = models.CharField(max_length=64, blank=True, default=current_or_blank, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} read {self.what} {self.target}".strip()


class AuditRecord(models.Model):
    """One line of the whole audit trail, read from the database view `governance_auditrecord` (migration
    governance 0006): changes (auditlog), security events and sensitive reads, in one list. Read only."""

    uid = models.CharField(max_length=40, primary_key=True)  # "change:12", "security:3", "read:7"
    kind = models.CharField(max_length=10)  # change | security | read
    record_id = models.BigIntegerField()
    seq = models.BigIntegerField(null=True)  # its seal in the audit chain
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, related_name="+")
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=255)
    summary = models.TextField()
    organization = models.ForeignKey(Organization, null=True, on_delete=models.DO_NOTHING, related_name="+")
    service = models.CharField(max_length=100)
    correlation_id = models.CharField(max_length=64)

    class Meta:
        managed = False
        db_table = "governance_auditrecord"
        ordering = ["-at", "-uid"]

    def __str__(self) -> str:
        return f"{self.uid} {self.action}"


class AuditExport(models.Model):
    """An export of a filtered view of the audit trail (governance.exports), written by a worker."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSON = "json", "JSON"
        FHIR = "fhir", _("FHIR R4 (AuditEvent Bundle)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    format = models.CharField(max_length=10, choices=Format.choices)
    query = models.JSONField(default=dict, blank=True)  # the filters of the exported view
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    path = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return round(100 * self.done / self.total) if self.total else 0
