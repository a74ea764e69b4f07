"""Fixtures of the support tests that drive the OpenAI-compatible path: a scripted model server in this
process and a worker process that calls it. Module-scoped, so each module gets its own server and worker."""

import pytest

from agents.scripted_llm import Script, ScriptedLLMServer
from tests import processes


@pytest.fixture(scope="module")
def llm():
    script = Script()
    with ScriptedLLMServer(script) as base_url:
        yield script, base_url


@pytest.fixture(scope="module")
def llm_worker(request, asgi_server, llm):
    _, base_url = llm
    with processes.celery_worker(
        platform_api_url=asgi_server,
        name=request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"),
        LLM_PROVIDER="openai",
        LLM_BASE_URL=base_url + "/v1",
        LLM_MODEL="scripted-model",
        LLM_MAX_RETRIES="0",
    ) as worker:
        yield worker


@pytest.fixture
def script(llm, llm_worker):
    """The scripted model, emptied for each test (replies still queued and requests recorded)."""
    script, _ = llm
    script.clear()
    return script
