"""The chat graph's nodes: small functions that read the state and return what changed.

Only `triage` and `extract` ask the model, and what they return is data validated against a schema.
Everything that decides *what* to change (`resolve`), proposes it, waits for the person (`confirm`) and
carries it out (`execute`) is deterministic and works on fresh data from the platform API.
"""

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.graphs.chat.resolution import resolve_request
from agents.graphs.chat.state import ChatState
from agents.graphs.chat.texts import say
from agents.graphs.chat.tools import ChatContext
from agents.prompts import refusal_task
from agents.providers.base import SlotContext, Slots

CONTINUE = "continue"  # triage's verdict when the message answers Alfred's pending question


def triage(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Which flow the message belongs to. An answer to a pending question continues the calendar flow."""
    if state.get("question"):
        return {"intent": CONTINUE}
    result, usage = runtime.context.model.classify_intent(state["text"])
    runtime.context.tools.record_usage(usage, step="triage")
    return {"intent": result.intent, "language": result.language, "slots": {}, "proposal_id": None}


def extract(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """The request's slots, merged over what was understood before when the message answers or corrects."""
    continuing = state.get("intent") == CONTINUE
    previous = Slots(**state["slots"]) if continuing and state.get("slots") else None
    practice = runtime.context.tools.practice()
    context = SlotContext(
        members=[_candidate(member.id, member.name, member.role) for member in practice.members],
        calendars=[_candidate(calendar.id, calendar.name, calendar.owner_name) for calendar in practice.calendars],
        me=practice.me.name,
        previous=previous,
        question=state.get("question", ""),
    )
    slots, usage = runtime.context.model.extract_slots(state["text"], context=context)
    runtime.context.tools.record_usage(usage, step="extract")
    if continuing and previous is not None and slots == previous:
        # Not an answer after all: forget the pending question and triage the message afresh.
        return {"question": "", "slots": {}, "intent": ""}
    return {"slots": slots.model_dump(), "intent": "calendar_access" if continuing else state["intent"]}


def resolve(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Match the slots to real members, calendars and levels; ask, explain, or get ready to propose."""
    verdict = resolve_request(Slots(**state["slots"]), language=state["language"], tools=runtime.context.tools)
    return {"question": verdict.question, "outcome": verdict.outcome, "pending_change": verdict.change}


def propose(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Store the exact change and show it to the person. Idempotent: a resumed run finds the same proposal."""
    change = state["pending_change"]
    tools = runtime.context.tools
    practice = tools.practice()
    calendar = next(c for c in practice.calendars if c.id == change["calendar_id"])
    member = next(m for m in practice.members if m.id == change["member_id"])
    summary = say(
        state["language"],
        "summary_change",
        member=member.name,
        before=change["before"],
        after=change["level"],
        calendar=calendar.name,
    )
    proposal = tools.propose(
        action=change["action"],
        calendar=calendar,
        member=member,
        level=change["level"],
        before=change["before"],
        summary=summary,
    )
    tools.say(say(state["language"], "propose", summary=summary), key=f"proposal:{proposal.id}:ask")
    return {"proposal_id": proposal.id, "question": ""}


def confirm(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Wait for the person: a decision on this proposal, or a new message (a correction or another topic)."""
    answer = interrupt({"kind": "confirm", "proposal_id": state["proposal_id"]})
    if answer.get("kind") == "decision" and answer.get("proposal_id") == state["proposal_id"]:
        return {"outcome": answer["decision"]}
    if answer.get("kind") == "edit":
        # The service set the proposal aside already; the edited request is resolved again on fresh data.
        return {
            "outcome": "edit",
            "slots": _edited_slots(state, answer.get("values") or {}, runtime),
            "proposal_id": None,
        }
    runtime.context.tools.set_aside(proposal_id=state["proposal_id"])
    return {
        "outcome": "set_aside",
        "text": answer.get("text", ""),
        "message_id": answer.get("message_id", state["message_id"]),
        "question": "correction",  # the new message may correct the request: the next triage continues it
        "proposal_id": None,
    }


def execute(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Carry out the confirmed proposal through the platform API, and say what happened."""
    tools, language = runtime.context.tools, state["language"]
    tools.status(say(language, "applying"))
    outcome = tools.execute(proposal_id=state["proposal_id"])
    key = {"executed": "executed", "expired": "expired", "rejected": "rejected"}.get(outcome.status)
    if key is None:
        key = {"state_changed": "state_changed", "api_refused": "api_refused"}.get(outcome.code, "failed")
    tools.say(say(language, key, summary=outcome.detail, detail=outcome.detail), key=f"proposal:{state['proposal_id']}")
    return {"outcome": outcome.status, "proposal_id": None}


def rejected(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    runtime.context.tools.say(say(state["language"], "rejected"), key=f"proposal:{state['proposal_id']}")
    return {"outcome": "rejected", "proposal_id": None}


def knowledge(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """How-to questions: answered from the knowledge base once it exists; until then, say so and offer a person."""
    runtime.context.tools.say(say(state["language"], "knowledge_later"))
    return {"outcome": "knowledge_unavailable"}


def handoff(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    runtime.context.tools.handoff()
    runtime.context.tools.say(say(state["language"], "handoff"))
    return {"outcome": "handed_off"}


def refuse(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Out of scope (medical advice, other practices, anything else): a polite no that says what Alfred does."""
    text = say(state["language"], "refuse")
    model = runtime.context.model
    if model.name == "offline":  # no generative model: it says our own sentence
        runtime.context.tools.say(text)
    else:
        task = refusal_task(text)
        runtime.context.tools.say(model.stream_reply(system=task, user=state["text"], language=state["language"]))
    return {"outcome": "refused"}


def _edited_slots(state: ChatState, values: dict, runtime: Runtime[ChatContext]) -> dict:
    """The request with the person's edits applied: ids from the form become the real names to resolve."""
    practice = runtime.context.tools.practice()
    slots = Slots(**state.get("slots") or {})
    member = next((m for m in practice.members if m.id == values.get("member")), None)
    calendar = next((c for c in practice.calendars if c.id == values.get("calendar")), None)
    change = state.get("pending_change") or {}
    update = {"calendar_owner": None}
    if member is not None:
        update["member"] = member.name
    if calendar is not None:
        update["calendar"] = calendar.name
    if values.get("level") in ("view", "book", "manage"):
        update["level"] = values["level"]
        update["action"] = "change" if change.get("before") else "grant"
    return slots.model_copy(update=update).model_dump()


def _candidate(id_: int, name: str, extra: str):
    from agents.providers.base import Candidate

    return Candidate(id=id_, name=name, extra=extra)
