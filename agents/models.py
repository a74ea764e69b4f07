"""Agent runs: one row per graph run, with the path it took and what its model calls cost."""

from django.db import models

from governance.correlation import current_or_blank


class AgentRun(models.Model):
    """One run of a graph on one conversation (a turn, or the resumption after a decision).

    Conversation and message are plain ids: the agents app sits below the support app and never imports it.
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        INTERRUPTED = "interrupted"  # waiting for the person's decision
        DONE = "done"
        FAILED = "failed"

    graph = models.CharField(max_length=40, default="chat")
    conversation_id = models.BigIntegerField(db_index=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    proposal_id = models.BigIntegerField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    intent = models.CharField(max_length=20, blank=True, default="")
    outcome = models.CharField(max_length=40, blank=True, default="")
    path = models.JSONField(default=list)
    steps = models.JSONField(default=list)  # the nodes in order with their durations: [{"node", "ms"}]
    usage = models.JSONField(default=list)  # [{"step", "model", "prompt_tokens", "completion_tokens", "latency_ms"}]
    retrieval = models.JSONField(default=list)  # chunks retrieved in the run: [{"chunk", "article", "score", ...}]
    error = models.TextField(blank=True, default="")
    # The request, frame or turn it belongs to: the same id as the audit entries and API calls it caused.
    correlation_id = models.CharField(max_length=64, blank=True, default=current_or_blank, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.graph} run {self.pk} ({self.status})"
