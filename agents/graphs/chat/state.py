"""What the chat graph remembers between turns (checkpointed as JSON): ids and plain data only."""

from typing import TypedDict


class ChatState(TypedDict, total=False):
    conversation_id: int
    user_id: int
    language: str  # "en" | "fr": the person's language for this turn
    message_id: int  # the user message being answered
    text: str  # its text (pseudonymization comes later; never sent anywhere but the configured model)
    intent: str
    slots: dict  # agents.providers.base.Slots, dumped
    question: str  # what Alfred asked and is waiting an answer to ("" when nothing is pending)
    proposal_id: int | None
    outcome: str  # how the turn ended, for traces and evaluation
    passages: list[dict]  # retrieve → answer → fact_check: agents.providers.base.Passage, as dicts
    draft: str  # the answer before fact_check (never shown as such)
    answer_attempt: int
    removed_sentences: int  # how many sentences fact_check removed from the answer shown
    pending_change: dict  # resolve → propose: {"action", "calendar_id", "member_id", "level", "before"}
