"""Run the chat graph for one turn or one decision, with the Postgres checkpointer, and record the run.

The caller (a Celery task of the support app) hands in the model and the tools; this module knows
nothing of conversations beyond their ids.
"""

import logging
import time
from dataclasses import asdict

from django.conf import settings
from django.utils import timezone
from langgraph.types import Command

from agents.checkpointer import checkpointer
from agents.graphs.chat.graph import build_graph
from agents.graphs.chat.tools import ChatContext
from agents.models import AgentRun

logger = logging.getLogger(__name__)


_compiled: list = [None, None]  # [the checkpointer, the graph compiled with it]


def _graph():
    """The chat graph compiled once per process and checkpointer (compiling costs ~2.5 ms, up to 3 times a run)."""
    saver = checkpointer()
    if _compiled[0] is not saver:
        _compiled[:] = [saver, build_graph(saver)]
    return _compiled[1]


def _config(conversation_id: int, epoch: int = 0) -> dict:
    """The graph's thread for a conversation. A new `epoch` (the conversation came back from a person) is a
    new thread: Alfred's memory of the conversation starts clean."""
    thread = f"chat-{conversation_id}" if not epoch else f"chat-{conversation_id}-{epoch}"
    return {"configurable": {"thread_id": thread}, "recursion_limit": settings.CHAT_RECURSION_LIMIT}


def pending_interrupt(conversation_id: int, epoch: int = 0) -> dict | None:
    """What the graph waits for on this conversation (e.g. {"kind": "confirm", "proposal_id": 3}), if anything."""
    state = _graph().get_state(_config(conversation_id, epoch))
    for interrupt in state.interrupts:
        return interrupt.value
    return None


def run_chat(*, conversation_id: int, graph_input, context: ChatContext, run: AgentRun, epoch: int = 0) -> AgentRun:
    """Stream the graph to its end or its next interrupt; record the path (with each node's duration), the
    usage, the retrieved chunks and the outcome."""
    graph = _graph()
    config = _config(conversation_id, epoch)
    mark = time.perf_counter()
    for update in graph.stream(graph_input, config, context=context, stream_mode="updates", durability="exit"):
        now = time.perf_counter()
        for node, values in update.items():
            if node == "__interrupt__":
                continue
            run.path.append(node)
            run.steps.append({"node": node, "ms": round((now - mark) * 1000, 1)})
            if node == "triage" and values and values.get("intent") not in (None, "continue"):
                run.intent = run.intent or values["intent"]
            if values and values.get("outcome"):
                run.outcome = values["outcome"]
        mark = now
    state = graph.get_state(config)
    run.status = AgentRun.Status.INTERRUPTED if state.interrupts else AgentRun.Status.DONE
    run.usage = [{"step": step, **asdict(usage)} for step, usage in context.tools.usages]
    run.retrieval = list(getattr(context.tools, "retrieved", []))
    run.finished_at = timezone.now()
    run.save()
    return run


def turn_input(*, conversation_id: int, user_id: int, message_id: int, text: str, language: str, epoch: int = 0):
    """The graph input for a new user message: a fresh run, or the answer to what the graph waits for."""
    waiting = pending_interrupt(conversation_id, epoch)
    if waiting is not None:
        return Command(resume={"kind": "message", "text": text, "message_id": message_id})
    return {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "message_id": message_id,
        "text": text,
        "language": language,
    }


NOTHING_TO_RESUME = object()


def decision_input(*, conversation_id: int, proposal_id: int, resume: dict, epoch: int = 0):
    """The graph input for the person's decision (or edit) on a proposal.

    Waiting at that proposal's confirmation: resume it. A run that died after the confirmation (the
    worker was killed while executing): continue from its last checkpoint (`None`). Otherwise the graph
    has moved on (a newer request set the proposal aside): NOTHING_TO_RESUME.
    """
    graph = _graph()
    state = graph.get_state(_config(conversation_id, epoch))
    for interrupt in state.interrupts:
        if interrupt.value.get("proposal_id") == proposal_id:
            return Command(resume={**resume, "proposal_id": proposal_id})
        return NOTHING_TO_RESUME
    if state.next and state.values.get("proposal_id") == proposal_id:
        return None
    return NOTHING_TO_RESUME
