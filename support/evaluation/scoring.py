"""Score a played case against its expectations (../shared/DATASET.md), and summarise a run.

What is read after the last turn, from the evaluation database:
- `intent`: the intent triage found for the first turn: the AgentRun of the case's first message (its
  first `say`, when a case opens with a `confirm`, which has no intent);
- `grants`: `{calendar key: {member key: level}}` for every calendar of the world; members without
  access are left out, and so are owners (an owner's manage is implicit, never a grant). An expected
  level for a calendar's owner is compared with that implicit `manage`;
- `cites`: the article slugs cited by the assistant's messages; `handoff`: the conversation was handed
  to staff; `proposals`, `replies`, `path` (the graph nodes of every run of the case, in order), and
  `outcomes` (how each run ended), for traces.

A case passes when every key of its `expect` holds: `achievement` is `full`, `partial` when some but not
all keys hold, `failed` when none does (a case without expectations is `full`).

Categories, for the pass rate per category (a case may be in several):
- `calendar`: the case expects `grants`;
- `refusal`: a calendar case whose expected grants are the world as written for every member it names —
  nothing may change (another practice's member, a viewer sharing, a self-grant, a rejected proposal…);
- `knowledge`: the case expects `cites`, `cites_any` or `not_cites`, or the intent `knowledge`;
- `handoff`: the case expects `handoff`, or the intent `handoff`.
"""

import math
import statistics

from agents.models import AgentRun
from support.evaluation.dataset import Case, World
from support.evaluation.play import PlayedCase
from support.evaluation.world import KNOWLEDGE_UNAVAILABLE, BuiltWorld
from support.models import ActionProposal, CalendarAccess, Conversation, Message

CATEGORIES = ("calendar", "refusal", "knowledge", "handoff")


def case_categories(case: Case, world: World) -> list[str]:
    expect = case.expect
    categories = []
    if "grants" in expect:
        categories.append("calendar")
        if all(
            world.level(calendar, member) == level
            for calendar, levels in expect["grants"].items()
            for member, level in levels.items()
        ):
            categories.append("refusal")
    if {"cites", "cites_any", "not_cites"} & expect.keys() or expect.get("intent") == "knowledge":
        categories.append("knowledge")
    if "handoff" in expect or expect.get("intent") == "handoff":
        categories.append("handoff")
    return categories


def observe(played: PlayedCase, built: BuiltWorld) -> dict:
    """What the case led to, read from the database after its last turn."""
    conversation = Conversation.objects.get(pk=played.conversation.pk)
    runs = list(AgentRun.objects.filter(conversation_id=conversation.pk).order_by("id"))
    replies = list(
        Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT)
        .order_by("id")
        .values_list("text", "citations")
    )
    first_runs = [run for run in runs if played.first_message_id and run.message_id == played.first_message_id]
    return {
        "intent": next((run.intent for run in reversed(first_runs) if run.intent), ""),
        "grants": grants_now(built),
        "cites": _cited_slugs(citations for _, citations in replies),
        "handoff": conversation.status == Conversation.Status.HANDED_OFF,
        "proposals": [
            {"status": status, "summary": summary}
            for status, summary in ActionProposal.objects.filter(conversation=conversation)
            .order_by("id")
            .values_list("status", "summary")
        ],
        "replies": [text for text, _ in replies],
        "path": [node for run in runs for node in run.path],
        "outcomes": [run.outcome for run in runs],
    }


def grants_now(built: BuiltWorld) -> dict:
    grants = {key: {} for key in built.calendars}
    rows = CalendarAccess.objects.filter(calendar__in=built.calendars.values()).values_list(
        "calendar_id", "user_id", "level", "calendar__owner_id"
    )
    for calendar_id, user_id, level, owner_id in rows.order_by("calendar_id", "user_id"):
        member = built.member_key(user_id)
        if member is not None and user_id != owner_id:
            grants[built.calendar_key(calendar_id)][member] = level
    return grants


def _cited_slugs(citation_lists) -> list[str]:
    """Slugs from the messages' citations: a slug string, or an object with a `slug` (or `article`)."""
    slugs: list[str] = []
    for citations in citation_lists:
        for citation in citations or []:
            slug = citation if isinstance(citation, str) else (citation or {}).get("slug") or citation.get("article")
            if isinstance(slug, str) and slug not in slugs:
                slugs.append(slug)
    return slugs


def check(case: Case, observed: dict, built: BuiltWorld) -> tuple[list[str], list[str]]:
    """(keys that held, failures in words) for each key of the case's `expect`."""
    held, failures = [], []
    for key, expected in case.expect.items():
        failure = CHECKS[key](expected, observed, built)
        if failure:
            failures.append(f"{key}: {failure}")
        else:
            held.append(key)
    return held, failures


def _check_intent(expected, observed, built) -> str:
    return "" if observed["intent"] == expected else f"expected {expected}, got {observed['intent'] or 'none'}"


def _check_not_intent(expected, observed, built) -> str:
    return f"the intent was {expected}" if observed["intent"] == expected else ""


def _check_handoff(expected, observed, built) -> str:
    if observed["handoff"] == expected:
        return ""
    return "the conversation was not handed to staff" if expected else "the conversation was handed to staff"


def _check_grants(expected, observed, built) -> str:
    wrong = []
    for calendar, levels in expected.items():
        owner = built.world.calendars[calendar].owner
        for member, level in levels.items():
            actual = "manage" if member == owner else observed["grants"][calendar].get(member)
            if actual != level:
                wrong.append(f"{calendar}/{member} expected {_level(level)}, got {_level(actual)}")
    return "; ".join(wrong)


def _level(level: str | None) -> str:
    return level or "no access"


def _missing_citation(built: BuiltWorld, observed: dict) -> str:
    cited = ", ".join(observed["cites"]) or "nothing"
    reason = "" if built.knowledge else f" — {KNOWLEDGE_UNAVAILABLE}"
    return f"(cited: {cited}){reason}"


def _check_cites(expected, observed, built) -> str:
    missing = [slug for slug in expected if slug not in observed["cites"]]
    return f"{', '.join(missing)} not cited {_missing_citation(built, observed)}" if missing else ""


def _check_cites_any(expected, observed, built) -> str:
    if any(slug in observed["cites"] for slug in expected):
        return ""
    return f"none of {', '.join(expected)} cited {_missing_citation(built, observed)}"


def _check_not_cites(expected, observed, built) -> str:
    cited = [slug for slug in expected if slug in observed["cites"]]
    return f"{', '.join(cited)} cited" if cited else ""


CHECKS = {
    "intent": _check_intent,
    "not_intent": _check_not_intent,
    "handoff": _check_handoff,
    "grants": _check_grants,
    "cites": _check_cites,
    "cites_any": _check_cites_any,
    "not_cites": _check_not_cites,
}


def case_result(case: Case, played: PlayedCase, built: BuiltWorld) -> dict:
    """The case object of the output (../shared/DATASET.md), with a few extras (categories, turns, errors)."""
    observed = observe(played, built)
    held, failures = check(case, observed, built)
    achievement = "full" if not failures else ("partial" if held else "failed")
    return {
        "id": case.id,
        "passed": not failures,
        "achievement": achievement,
        "failures": failures,
        "categories": case_categories(case, built.world),
        "intent": observed["intent"],
        "grants": observed["grants"],
        "cites": observed["cites"],
        "handoff": observed["handoff"],
        "proposals": observed["proposals"],
        "replies": observed["replies"],
        "path": observed["path"],
        "outcomes": observed["outcomes"],
        "latency_ms": [turn.latency_ms for turn in played.turns],
        "turns": [
            {"kind": turn.kind, "latency_ms": turn.latency_ms, "ran": turn.ran, "note": turn.note}
            for turn in played.turns
        ],
        "errors": [error for turn in played.turns for error in turn.errors],
    }


def crashed_result(case: Case, world: World, error: str) -> dict:
    """A case that could not be played to its end (an unexpected error): failed, with the error."""
    return {
        "id": case.id,
        "passed": False,
        "achievement": "failed",
        "failures": [f"the case could not be played: {error}"],
        "categories": case_categories(case, world),
        "intent": "",
        "grants": {},
        "cites": [],
        "handoff": False,
        "proposals": [],
        "replies": [],
        "path": [],
        "outcomes": [],
        "latency_ms": [],
        "turns": [],
        "errors": [error],
    }


def summarize(results: list[dict], *, provider: str, dataset: str, duration_s: float) -> dict:
    """Counts, pass rates (overall and per category) and the latency of the turns the graph ran."""
    latencies = [turn["latency_ms"] for result in results for turn in result["turns"] if turn["ran"]]
    return {
        "dataset": dataset,
        "provider": provider,
        "cases": len(results),
        "passed": sum(result["passed"] for result in results),
        "achievement": {kind: sum(r["achievement"] == kind for r in results) for kind in ("full", "partial", "failed")},
        "pass_rate": _rate(results),
        "categories": {
            category: {
                "cases": len(members),
                "passed": sum(r["passed"] for r in members),
                "pass_rate": _rate(members),
            }
            for category in CATEGORIES
            if (members := [r for r in results if category in r["categories"]])
        },
        "latency_ms": {
            "turns": len(latencies),
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
        },
        "duration_s": round(duration_s, 1),
    }


def _rate(results: list[dict]) -> float | None:
    return round(sum(r["passed"] for r in results) / len(results), 4) if results else None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
