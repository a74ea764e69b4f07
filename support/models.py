"""The practice domain that support acts on: calendars and who may see, book or manage them."""

from auditlog.registry import auditlog
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class AccessLevel(models.TextChoices):
    """Ordered: view < book < manage. Each level includes the ones below it."""

    # A context: alone, "View" and "Book" are ambiguous to a translator (a noun? a button?).
    VIEW = "view", pgettext_lazy("calendar access level", "View")
    BOOK = "book", pgettext_lazy("calendar access level", "Book")
    MANAGE = "manage", pgettext_lazy("calendar access level", "Manage")

    @classmethod
    def rank(cls, level: str) -> int:
        return [cls.VIEW, cls.BOOK, cls.MANAGE].index(level)


class Calendar(models.Model):
    """A practitioner's calendar. Its owner implicitly has manage on it."""

    organization = models.ForeignKey("governance.Organization", on_delete=models.CASCADE, related_name="calendars")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_calendars")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class CalendarAccess(models.Model):
    """What one member may do on someone else's calendar. One row per calendar and user."""

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="accesses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_accesses")
    level = models.CharField(max_length=10, choices=AccessLevel.choices)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calendar", "user"], name="calendar_access_unique")]
        verbose_name_plural = "calendar accesses"

    def __str__(self) -> str:
        return f"{self.user} {self.level} on {self.calendar}"


auditlog.register(Calendar)
auditlog.register(CalendarAccess)


class Conversation(models.Model):
    """A chat between one practice member and Alfred. Its events are numbered (`last_seq`) so that a
    reconnecting client catches up from the database with nothing lost or shown twice.

    Who answers depends on `status`: Alfred while it is open; nobody while it waits for a person (handed
    off: the member's messages are kept for staff); the staff member in `assignee` once they took it over;
    nobody once closed. `graph_epoch` numbers the agent's memory: a hand-back starts a new one, so Alfred
    continues from a clean state.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("With Alfred")
        HANDED_OFF = "handed_off", _("Waiting for a person")
        WITH_STAFF = "with_staff", _("With support staff")
        CLOSED = "closed", _("Closed")

    class RunStatus(models.TextChoices):
        IDLE = "idle", _("Idle")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Working")
        WAITING = "waiting_confirmation", _("Waiting for your confirmation")
        WAITING_APPROVAL = "waiting_approval", _("Waiting for approval by support")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    organization = models.ForeignKey("governance.Organization", on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=120, blank=True, default="")
    language = models.CharField(max_length=8, default="en")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    run_status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.IDLE)
    last_seq = models.PositiveIntegerField(default=0)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    handed_off_at = models.DateTimeField(null=True, blank=True)  # since when it waits for a person
    taken_over_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    graph_epoch = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-updated_at"]),
            models.Index(fields=["status", "-updated_at"], name="conversation_inbox"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    """One message of a conversation. User messages are idempotent on the client's own id."""

    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Alfred")
        STAFF = "staff", _("Support staff")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for Alfred")  # a user message whose turn has not run yet
        STREAMING = "streaming", _("Being written")
        COMPLETE = "complete", _("Complete")
        FAILED = "failed", _("Failed")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    author = models.ForeignKey(  # the staff member who wrote a staff message
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.CharField(max_length=64, blank=True, default="")
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    # What an assistant message answers, so that a retried turn rewrites its own reply instead of adding one:
    # "message:<id>" for the reply to a user message, "proposal:<id>" for the outcome of a proposal.
    turn_key = models.CharField(max_length=64, blank=True, default="")
    text = models.TextField(blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    citations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"], condition=~models.Q(client_id=""), name="message_unique_client_id"
            ),
            models.UniqueConstraint(
                fields=["conversation", "turn_key"], condition=~models.Q(turn_key=""), name="message_unique_turn_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"


class ChatEvent(models.Model):
    """A server event of a conversation, numbered, kept so that clients catch up after a reconnect.
    Token deltas are not kept: the assistant message they build is (and its text so far)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=16)  # status | message | form | result | participant
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="chat_event_unique_seq")]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.type}"


class ActionProposal(models.Model):
    """An exact change Alfred proposes, shown to the person in plain words, done only once they confirm.

    `arguments` are the exact API arguments; `arguments_hash` binds a confirmation to them; `state_version`
    is the state they were computed from: `execute` refuses when the state moved on or the proposal expired.
    The transition confirmed → executing is one conditional UPDATE, so nothing is ever executed twice.

    A proposal that the approval policy marks (`approval_reasons`) waits, once the member confirmed, for a
    member of staff (`reviewed_by`) to approve or reject it; it still executes on the member's authority.
    Every status change is one conditional UPDATE and one audit log entry naming its actor.
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        AWAITING_APPROVAL = "awaiting_approval", _("Waiting for staff approval")
        CONFIRMED = "confirmed", _("Confirmed")
        EXECUTING = "executing", _("Being carried out")
        EXECUTED = "executed", _("Done")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Failed")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="proposals")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="proposals")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=10)  # grant | change | revoke
    arguments = models.JSONField()  # {"calendar_id", "user_id", "level"}
    arguments_hash = models.CharField(max_length=64)
    # In plain words, in the member's language: what will change ("Julie Bernard will be able to book appointments
    # in Consultations Dr Martin instead of only seeing it"), and what is true once it is done ("Done: Julie
    # Bernard can now book appointments in Consultations Dr Martin."), said by whoever carries it out.
    summary = models.TextField()
    done = models.TextField(blank=True, default="")  # empty for proposals stored before it existed
    before = models.JSONField(default=dict)  # {"level": "view" | None}
    after = models.JSONField(default=dict)
    state_version = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)  # the member's confirm / reject / edit
    approval_reasons = models.JSONField(default=list, blank=True)  # the policy rules that ask for staff approval
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True, default="")
    executed_at = models.DateTimeField(null=True, blank=True)
    result_code = models.CharField(max_length=40, blank=True, default="")
    result_detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "decided_at"], name="proposal_status")]

    def __str__(self) -> str:
        return f"{self.summary} ({self.status})"


auditlog.register(ActionProposal)
