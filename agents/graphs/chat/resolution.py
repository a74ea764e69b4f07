"""`resolve`, deterministic: from the words the person used to one exact change on real, fresh data.

It asks when something is missing or ambiguous (offering the real candidates), explains when the change
cannot be made (and why, in plain words), and otherwise returns the change to propose. No model here.
"""

from dataclasses import dataclass, field

from agents.graphs.chat.texts import levels_text, options_text, say
from agents.graphs.chat.tools import Calendar, ChatTools, Member, Practice
from agents.providers.base import Candidate, Slots
from agents.providers.offline.matching import match_candidates

LEVELS = ("view", "book", "manage")
SELF_WORDS = {"me", "myself", "moi", "moi-même"}  # the person asks for themselves


@dataclass
class Verdict:
    outcome: str  # ask | stop | propose
    question: str = ""
    change: dict = field(default_factory=dict)


def _ask(tools: ChatTools, text: str, field_name: str, options: list[tuple], outcome_question: str) -> Verdict:
    tools.ask(question=text, field=field_name, options=options)
    return Verdict("ask", question=outcome_question)


def _stop(tools: ChatTools, text: str, outcome: str) -> Verdict:
    tools.say(text)
    return Verdict("stop", question="", change={"reason": outcome})


def _matching(words: str, items: list, name) -> list:
    by_id = {item.id: item for item in items}
    ranked = match_candidates(words, [Candidate(id=item.id, name=name(item)) for item in items])
    return [by_id[candidate.id] for candidate in ranked]


def _member(slots: Slots, practice: Practice, language: str, tools: ChatTools) -> Member | Verdict:
    others = [m for m in practice.members if m.id != practice.me.id]
    if not slots.member:
        options = [(m.id, m.name) for m in others]
        return _ask(tools, say(language, "ask_member"), "member", options, "member")
    if slots.member.strip().lower() in SELF_WORDS:
        return _stop(tools, say(language, "self_change"), "self_change")
    found = _matching(slots.member, practice.members, lambda m: m.name)
    if not found:
        return _stop(tools, say(language, "member_unknown", words=slots.member), "member_unknown")
    if len(found) > 1:
        names = [m.name for m in found]
        text = say(language, "ask_member_among", words=slots.member, options=options_text(language, names))
        return _ask(tools, text, "member", [(m.id, m.name) for m in found], "member")
    if found[0].id == practice.me.id:
        return _stop(tools, say(language, "self_change"), "self_change")
    return found[0]


def _calendar(slots: Slots, practice: Practice, language: str, tools: ChatTools) -> Calendar | Verdict:
    calendars = practice.calendars
    owner = slots.calendar_owner
    if owner == "me":
        calendars = [c for c in calendars if c.owner_id == practice.me.id]
    elif owner:
        owners = _matching(owner, practice.members, lambda m: m.name)
        calendars = [c for c in calendars if c.owner_id in {m.id for m in owners}]
    if slots.calendar and calendars:
        matched = _matching(slots.calendar, calendars, lambda c: c.name)
        calendars = matched or ([] if not owner else calendars)
    if not slots.calendar and not owner:
        calendars = [c for c in calendars if c.my_level == "manage"]
    if not calendars:
        if not practice.calendars:
            return _stop(tools, say(language, "no_calendar"), "no_calendar")
        words = slots.calendar or owner or ""
        return _stop(tools, say(language, "calendar_unknown", words=words), "calendar_unknown")
    if len(calendars) > 1:
        text = say(language, "ask_calendar", options=options_text(language, [c.name for c in calendars]))
        return _ask(tools, text, "calendar", [(c.id, c.name) for c in calendars], "calendar")
    return calendars[0]


def resolve_request(slots: Slots, *, language: str, tools: ChatTools) -> Verdict:
    """One exact change, a question, or an explanation of why not."""
    tools.status(say(language, "looking_up"))
    practice = tools.practice()
    member = _member(slots, practice, language, tools)
    if isinstance(member, Verdict):
        return member
    calendar = _calendar(slots, practice, language, tools)
    if isinstance(calendar, Verdict):
        return calendar
    if calendar.my_level != "manage":
        return _stop(
            tools, say(language, "not_manager", calendar=calendar.name, owner=calendar.owner_name), "not_manager"
        )
    if member.id == calendar.owner_id:
        return _stop(tools, say(language, "owner_access", member=member.name, calendar=calendar.name), "owner_access")
    if slots.action != "revoke" and slots.level not in LEVELS:
        text = say(language, "ask_level", member=member.name, calendar=calendar.name, options=levels_text(language))
        return _ask(tools, text, "level", [(level, level) for level in LEVELS], "level")
    tools.status(say(language, "checking"))
    before = tools.current_level(calendar_id=calendar.id, member_id=member.id)
    if slots.action == "revoke":
        if before is None:
            text = say(language, "nothing_to_revoke", member=member.name, calendar=calendar.name)
            return _stop(tools, text, "nothing_to_revoke")
        action, level = "revoke", None
    else:
        if before == slots.level:
            text = say(language, "already", member=member.name, level=before, calendar=calendar.name)
            return _stop(tools, text, "already")
        action, level = ("change" if before else "grant"), slots.level
    change = {"action": action, "calendar_id": calendar.id, "member_id": member.id, "level": level, "before": before}
    return Verdict("propose", change=change)
