"""The chat graph. The only place its edges are declared.

triage ─┬─ calendar_access ─▶ extract ─▶ resolve ─┬─ propose ─▶ confirm ─┬─ execute
        │   (or an answer)       │                 └─ (asked / explained) ├─ rejected
        │                        └─ not an answer: back to triage         └─ a new message: triage
        ├─ knowledge ─▶ retrieve ─▶ answer ─▶ fact_check ─▶ (the cited answer, or "I don't know")
        │                  └─ nothing relevant   ▲      └─ mostly unsupported: answer again (once)
        ├─ handoff ───▶ handoff
        └─ other ─────▶ refuse
"""

from langgraph.graph import END, START, StateGraph

from agents.graphs.chat import nodes
from agents.graphs.chat.state import ChatState
from agents.graphs.chat.tools import ChatContext


def _after_triage(state: ChatState) -> str:
    intent = state.get("intent")
    if intent in ("calendar_access", nodes.CONTINUE):
        return "extract"
    return {"knowledge": "retrieve", "handoff": "handoff"}.get(intent, "refuse")


def _after_retrieve(state: ChatState) -> str:
    return "answer" if state.get("outcome") != "unknown" else END


def _after_fact_check(state: ChatState) -> str:
    return "answer" if state.get("outcome") == "regenerate" else END


def _after_extract(state: ChatState) -> str:
    return "triage" if not state.get("intent") else "resolve"


def _after_resolve(state: ChatState) -> str:
    return "propose" if state.get("outcome") == "propose" else END


def _after_confirm(state: ChatState) -> str:
    return {"confirm": "execute", "reject": "rejected", "edit": "resolve"}.get(state.get("outcome"), "triage")


def build_graph(checkpointer=None):
    graph = StateGraph(ChatState, context_schema=ChatContext)
    for name in (
        "triage",
        "extract",
        "resolve",
        "propose",
        "confirm",
        "execute",
        "rejected",
        "retrieve",
        "answer",
        "fact_check",
        "handoff",
        "refuse",
    ):
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", _after_triage, ["extract", "retrieve", "handoff", "refuse"])
    graph.add_conditional_edges("extract", _after_extract, ["triage", "resolve"])
    graph.add_conditional_edges("resolve", _after_resolve, ["propose", END])
    graph.add_edge("propose", "confirm")
    graph.add_conditional_edges("confirm", _after_confirm, ["execute", "rejected", "resolve", "triage"])
    graph.add_conditional_edges("retrieve", _after_retrieve, ["answer", END])
    graph.add_edge("answer", "fact_check")
    graph.add_conditional_edges("fact_check", _after_fact_check, ["answer", END])
    for name in ("execute", "rejected", "handoff", "refuse"):
        graph.add_edge(name, END)
    return graph.compile(checkpointer=checkpointer)
