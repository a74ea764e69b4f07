"""LLM providers behind one interface (`agents.providers.base.ChatModel`), chosen by settings.LLM_PROVIDER."""

import os
import threading

from django.conf import settings

from agents.providers.base import ChatModel

_models: dict[tuple, ChatModel] = {}
_models_lock = threading.Lock()


def get_chat_model() -> ChatModel:
    """The configured provider: `offline` (default, no network) or `openai` (any OpenAI-compatible endpoint).

    One `OpenAIChatModel` per process and configuration: building one builds ChatOpenAI, its two
    structured-output runnables and new HTTP clients (new connections, no keep-alive between turns).
    """
    if settings.LLM_PROVIDER == "openai":
        from agents.providers.openai import OpenAIChatModel

        key = (
            os.getpid(),
            settings.LLM_MODEL,
            settings.LLM_BASE_URL,
            settings.LLM_API_KEY,
            settings.LLM_TIMEOUT,
            settings.LLM_MAX_RETRIES,
            settings.LLM_TEMPERATURE,
        )
        with _models_lock:
            model = _models.get(key)
            if model is None:
                model = _models[key] = OpenAIChatModel.from_settings()
        return model
    from agents.providers.offline import OfflineChatModel

    return OfflineChatModel.shared()
