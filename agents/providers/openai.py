"""The `openai` provider: any OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, Ollama, Mistral...)
through langchain-openai's `ChatOpenAI`.

Structured steps (triage, slots) use tool calling, the one structured-output method these servers share:
the model is made to call a single tool whose parameters are the pydantic schema, and the arguments are
validated against that schema. Whatever goes wrong (an error after the retries, a timeout, no tool call,
arguments that are not JSON or not valid) gives the safe fallback (intent "other" with confidence 0, or
empty slots) and a log line: never an exception to the graph, never a guess.
"""

import logging
import time
from collections.abc import Iterator
from typing import Any

import openai as openai_sdk
from django.conf import settings
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.grounding import supported_offline
from agents.prompts import (
    PROMPTS,
    answer_system_prompt,
    fact_check_user_block,
    passages_block,
    pseudonymize,
    reply_system_prompt,
    slot_context_block,
)
from agents.providers.base import Claim, IntentResult, Passage, SlotContext, Slots, Usage

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"  # sent when LLM_API_KEY is empty: local servers (vLLM, Ollama) accept any key

FALLBACK_INTENT = IntentResult(intent="other", confidence=0.0, reason="no valid model output")
FALLBACK_REPLY = {
    "en": "Sorry, I cannot answer right now. Please try again in a moment, or ask for a person from the support team.",
    "fr": "Désolé, je ne peux pas répondre pour le moment. Réessayez dans un instant, ou demandez une personne de "
    "l'équipe support.",
}


class SentenceVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    supported: bool


class SupportVerdicts(BaseModel):
    """The fact-checker's verdicts: one per sentence, by index."""

    model_config = ConfigDict(extra="forbid")

    verdicts: list[SentenceVerdict] = Field(max_length=50)


class OpenAIChatModel:
    """`ChatModel` over an OpenAI-compatible endpoint.

    `LLM_TIMEOUT` bounds each attempt: the wait for the response, then each wait between two streamed
    chunks (a stream that keeps flowing has no total limit). The client retries `LLM_MAX_RETRIES` times on
    connection errors, timeouts, 408/409/429 and 5xx, so a call can last (retries + 1) x timeout + backoff.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str = "",
        timeout: float = 30.0,
        max_retries: int = 2,
        temperature: float = 0.0,
    ) -> None:
        self.model = model
        self.name = f"openai/{model}"
        # Everything explicit: left unset, ChatOpenAI would take the URL and key from OPENAI_API_BASE,
        # OPENAI_BASE_URL, OPENAI_API_KEY or a LangSmith gateway in the environment, and would switch some
        # models to the Responses API, which OpenAI-compatible servers do not have.
        self.llm = ChatOpenAI(
            base_url=base_url or OPENAI_BASE_URL,
            model=model,
            api_key=api_key or NO_KEY,
            timeout=timeout,
            max_retries=max_retries,
            temperature=temperature,
            stream_usage=True,
            use_responses_api=False,
        )
        self._triage = self.llm.with_structured_output(IntentResult, method="function_calling", include_raw=True)
        self._slots = self.llm.with_structured_output(Slots, method="function_calling", include_raw=True)
        self._judge = self.llm.with_structured_output(SupportVerdicts, method="function_calling", include_raw=True)

    @classmethod
    def from_settings(cls) -> "OpenAIChatModel":
        return cls(
            model=settings.LLM_MODEL,
            base_url=settings.LLM_BASE_URL,
            api_key=settings.LLM_API_KEY,
            timeout=settings.LLM_TIMEOUT,
            max_retries=settings.LLM_MAX_RETRIES,
            temperature=settings.LLM_TEMPERATURE,
        )

    def classify_intent(self, text: str) -> tuple[IntentResult, Usage]:
        messages = [SystemMessage(PROMPTS["triage"].text), HumanMessage(pseudonymize(text))]
        result, usage = self._structured(self._triage, messages, IntentResult, step="triage")
        return result or FALLBACK_INTENT, usage

    def extract_slots(self, text: str, *, context: SlotContext) -> tuple[Slots, Usage]:
        """The model returns the whole request, merged over `context.previous` as the prompt asks; nothing is
        merged here (the model tells a correction from a new request). Invalid output: empty `Slots`."""
        system = f"{PROMPTS['slots'].text}\n\n{slot_context_block(context)}"
        messages = [SystemMessage(system), HumanMessage(pseudonymize(text))]
        result, usage = self._structured(self._slots, messages, Slots, step="slots")
        return result or Slots(), usage

    def stream_reply(self, *, system: str, user: str, language: str, reference: str = "") -> Iterator[str | Usage]:
        """Text deltas, then one `Usage` (`reference` is already quoted in the task `system`). If the call fails
        (after the retries, or in the middle of the stream), the failure is logged and a fixed apology in
        `language` is streamed as the last delta."""
        messages = [SystemMessage(reply_system_prompt(system, language)), HumanMessage(pseudonymize(user))]
        streamed = False
        for item in self._stream(messages, step="reply"):
            if item is None:
                apology = FALLBACK_REPLY.get(language, FALLBACK_REPLY["en"])
                yield f"\n\n{apology}" if streamed else apology
                continue
            streamed = streamed or isinstance(item, str)
            yield item

    def answer(
        self, *, question: str, passages: list[Passage], language: str, strict: bool = False
    ) -> Iterator[str | Usage]:
        """The grounded prompt (passages numbered, cite every sentence), streamed. A failed call yields
        nothing but its `Usage`: the graph then says it does not know rather than show an apology as an answer."""
        system = answer_system_prompt(passages, language, strict=strict)
        messages = [SystemMessage(system), HumanMessage(pseudonymize(question))]
        yield from (item for item in self._stream(messages, step="answer") if item is not None)

    def _stream(self, messages: list[BaseMessage], *, step: str) -> Iterator[str | Usage | None]:
        """Text deltas; `None` once if the call failed (logged; whatever the client raised); then one `Usage`."""
        start = time.perf_counter()
        prompt_tokens = completion_tokens = 0
        try:
            for chunk in self.llm.stream(messages):
                if chunk.usage_metadata:
                    prompt_tokens += chunk.usage_metadata.get("input_tokens", 0)
                    completion_tokens += chunk.usage_metadata.get("output_tokens", 0)
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content
        except Exception as error:  # noqa: BLE001 (the caller decides what the person gets instead)
            logger.error(
                "LLM %s failed (model %s): %s", step, self.model, _describe(error), exc_info=_unexpected(error)
            )
            yield None
        yield Usage(self.name, prompt_tokens, completion_tokens, _ms_since(start))

    def check_support(self, *, claims: list[Claim], passages: list[Passage]) -> tuple[list[bool], Usage]:
        """The LLM judge. If it fails or leaves a sentence without a verdict, the deterministic check of
        `agents.grounding` decides for those sentences: a judge that does not answer never lets one through."""
        if not claims:
            return [], Usage(self.name)
        system = f"{PROMPTS['fact_check'].text}\n\n{passages_block(passages)}"
        messages = [SystemMessage(system), HumanMessage(fact_check_user_block(claims))]
        result, usage = self._structured(self._judge, messages, SupportVerdicts, step="fact_check")
        verdicts: dict[int, bool] = {}
        if result is not None:
            for verdict in result.verdicts:
                if verdict.index < len(claims):
                    verdicts.setdefault(verdict.index, verdict.supported)
        missing = [i for i in range(len(claims)) if i not in verdicts]
        if missing:
            fallback = supported_offline([claims[i] for i in missing], passages)
            verdicts.update(zip(missing, fallback, strict=True))
        return [verdicts[i] for i in range(len(claims))], usage

    def _structured(
        self, runnable: Any, messages: list[BaseMessage], schema: type, *, step: str
    ) -> tuple[Any | None, Usage]:
        """Run a structured step: (the validated result or None, the usage)."""
        start = time.perf_counter()
        try:
            output = runnable.invoke(messages)
        except Exception as error:  # noqa: BLE001 (the contract: a logged fallback, never an exception to the graph)
            # e.g. tool arguments that are JSON but not an object fail inside langchain-openai, before the parser.
            logger.warning(
                "LLM %s call failed (model %s): fallback. %s",
                step,
                self.model,
                _describe(error),
                exc_info=_unexpected(error),
            )
            return None, Usage(self.name, latency_ms=_ms_since(start))
        raw = output.get("raw")
        usage_metadata = getattr(raw, "usage_metadata", None) or {}
        usage = Usage(
            self.name,
            prompt_tokens=usage_metadata.get("input_tokens", 0),
            completion_tokens=usage_metadata.get("output_tokens", 0),
            latency_ms=_ms_since(start),
        )
        parsed = output.get("parsed")
        if isinstance(parsed, schema):
            return parsed, usage
        logger.warning(
            "LLM %s output invalid (model %s): fallback. %s. Tool calls: %s, invalid (not JSON): %s",
            step,
            self.model,
            _describe(output.get("parsing_error")),
            [call["name"] for call in getattr(raw, "tool_calls", [])],
            [call.get("name") for call in getattr(raw, "invalid_tool_calls", [])],
        )
        return None, usage


def _describe(error: BaseException | None) -> str:
    """What went wrong, without the model's values (they may hold personal data): for invalid output the
    fields and error types only, for API errors the status and the server's message."""
    if error is None:
        return "No valid tool call"
    if isinstance(error, ValidationError):
        problems = ", ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['type']}" for e in error.errors())
        return f"Invalid arguments ({problems})"
    if isinstance(error, openai_sdk.APIError):
        return f"{type(error).__name__}: {error.message[:300]}"
    return type(error).__name__


def _unexpected(error: BaseException) -> bool:
    """Worth a traceback: not an API error (timeouts, HTTP errors) nor invalid output (whose traceback would
    print the values)."""
    return not isinstance(error, openai_sdk.APIError | ValidationError | OutputParserException)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
