"""The chat graph's nodes: small functions that read the state and return what changed.

Only `triage`, `extract`, `answer` and `fact_check` ask the model. What triage and extract return is data
validated against a schema; an answer is shown only after fact_check kept its supported sentences.
Everything that decides *what* to change (`resolve`), proposes it, waits for the person (`confirm`) and
carries it out (`execute`) is deterministic and works on fresh data from the platform API.
"""

from dataclasses import asdict

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.graphs.chat.resolution import resolve_request
from agents.graphs.chat.state import ChatState
from agents.graphs.chat.texts import done_text, outcome_text, say, summary_text
from agents.graphs.chat.tools import ChatContext
from agents.grounding import claims_from_text, compose
from agents.prompts import refusal_task
from agents.providers.base import Passage, SlotContext, Slots, Usage

CONTINUE = "continue"  # triage's verdict when the message answers Alfred's pending question
HANDOFF_OFFER = "handoff_offer"  # the pending question after "I don't know": a yes hands over to a person
NO_ANSWER = "NO_ANSWER"  # what the grounded prompt asks the model to write when the passages do not answer
MAX_ANSWER_ATTEMPTS = 2
_YES = {"yes", "yeah", "yep", "sure", "ok", "okay", "please", "oui", "ouais", "d'accord", "daccord", "volontiers"}


def is_yes(text: str) -> bool:
    """A short yes ("yes please", "oui, merci"), in English or French."""
    words = [word.strip(".,!?;:'\"") for word in text.lower().split()]
    return 0 < len(words) <= 4 and words[0] in _YES


def triage(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Which flow the message belongs to. An answer to a pending question continues the calendar flow; a yes
    to Alfred's offer of a person (after a question it could not answer) hands the conversation over."""
    if state.get("question") == HANDOFF_OFFER:
        if is_yes(state["text"]):
            return {"intent": "handoff", "question": ""}
        state = {**state, "question": ""}
    if state.get("question"):
        return {"intent": CONTINUE}
    result, usage = runtime.context.model.classify_intent(state["text"])
    runtime.context.tools.record_usage(usage, step="triage")
    return {"intent": result.intent, "language": result.language, "slots": {}, "proposal_id": None, "question": ""}


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
    """Store the exact change and show it to the person. Idempotent: a resumed run finds the same proposal.

    Its summary says what will change, and its done-sentence what will then be true, both in the person's
    language: the done-sentence is stored with the proposal, so that whoever carries it out (this graph, or
    the worker after a staff approval) and the form's result line say the same words."""
    change = state["pending_change"]
    tools = runtime.context.tools
    practice = tools.practice()
    calendar = next(c for c in practice.calendars if c.id == change["calendar_id"])
    member = next(m for m in practice.members if m.id == change["member_id"])
    names = {"action": change["action"], "member": member.name, "calendar": calendar.name}
    summary = summary_text(state["language"], level=change["level"], before=change["before"], **names)
    # The message that introduces the form comes first, as in a conversation (its key is the change's, so
    # a resumed run says it once).
    key = f"ask:{state['message_id']}:{change['calendar_id']}:{change['member_id']}:{change['level']}"
    tools.say(say(state["language"], "propose", summary=summary), key=key)
    proposal = tools.propose(
        action=change["action"],
        calendar=calendar,
        member=member,
        level=change["level"],
        before=change["before"],
        summary=summary,
        done=done_text(state["language"], level=change["level"], **names),
    )
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
    tools.say(outcome_text(language, outcome), key=f"proposal:{state['proposal_id']}")
    return {"outcome": outcome.status, "proposal_id": None}


def rejected(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    runtime.context.tools.say(say(state["language"], "rejected"), key=f"proposal:{state['proposal_id']}")
    return {"outcome": "rejected", "proposal_id": None}


def retrieve(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """How-to questions, step 1: the passages of published articles that may answer (their ids are recorded
    with the turn). Nothing relevant: say so and offer a person, without asking the model anything."""
    tools, language = runtime.context.tools, state["language"]
    tools.status(say(language, "searching_articles"))
    passages = tools.search_knowledge(query=state["text"], language=language)
    if not passages:
        return _unknown(state, runtime)
    # outcome "": the previous turn's ("unknown" after an "I don't know") stays in the checkpoint otherwise,
    # and the edge after this node would end the turn without an answer.
    passages_data = [asdict(passage) for passage in passages]
    return {"passages": passages_data, "answer_attempt": 0, "draft": "", "outcome": ""}


def answer(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Step 2: a draft from the passages only, each sentence citing its passages. Not shown yet."""
    tools, language = runtime.context.tools, state["language"]
    tools.status(say(language, "writing_answer"))
    attempt = state.get("answer_attempt", 0) + 1
    draft = []
    for item in runtime.context.model.answer(
        question=state["text"], passages=_passages(state), language=language, strict=attempt > 1
    ):
        if isinstance(item, Usage):
            tools.record_usage(item, step="answer")
        else:
            draft.append(item)
    return {"draft": "".join(draft).strip(), "answer_attempt": attempt}


def fact_check(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Step 3: every sentence must be supported by a passage it cites (the provider's check: an LLM judge, or
    the offline overlap/embedding check). Unsupported sentences are removed; when most are, the answer is
    written again once (a generative model only); with nothing supported, Alfred says it does not know."""
    tools, language, model = runtime.context.tools, state["language"], runtime.context.model
    passages = _passages(state)
    draft = state.get("draft", "")
    claims = [] if draft.startswith(NO_ANSWER) else claims_from_text(draft)
    tools.status(say(language, "checking_answer"))
    verdicts, usage = model.check_support(claims=claims, passages=passages) if claims else ([], None)
    if usage is not None:
        tools.record_usage(usage, step="fact_check")
    # Whatever a judge says, a sentence that cites none of the passages is not shown (it would be uncited).
    numbers = {passage.number for passage in passages}
    verdicts = [ok and bool(numbers.intersection(c.citations)) for c, ok in zip(claims, verdicts, strict=True)]
    supported = sum(verdicts)
    if model.name != "offline" and state.get("answer_attempt", 1) < MAX_ANSWER_ATTEMPTS and supported * 2 < len(claims):
        return {"outcome": "regenerate"}
    if not supported:
        return _unknown(state, runtime)
    grounded = compose(claims, verdicts, passages)
    tools.say(grounded.text, citations=grounded.citations)
    return {"outcome": "answered", "draft": "", "removed_sentences": grounded.removed}


def _unknown(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    runtime.context.tools.say(say(state["language"], "knowledge_unknown"))
    return {"outcome": "unknown", "question": HANDOFF_OFFER, "draft": ""}


def _passages(state: ChatState) -> list[Passage]:
    return [Passage(**passage) for passage in state.get("passages") or []]


def handoff(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    runtime.context.tools.handoff()
    runtime.context.tools.say(say(state["language"], "handoff"))
    return {"outcome": "handed_off"}


def refuse(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Out of scope (medical advice, other practices, anything else): a polite no that says what Alfred does."""
    text = say(state["language"], "refuse")
    reply = runtime.context.model.stream_reply(
        system=refusal_task(text), user=state["text"], language=state["language"], reference=text
    )
    runtime.context.tools.say(reply)
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
