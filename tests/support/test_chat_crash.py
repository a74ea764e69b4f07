"""A worker killed in the middle of a turn (kill -9): the person's message is not lost, the turn is run
again, and nothing is proposed or executed twice."""

import signal
import time

import psutil
import pytest

from agents.models import AgentRun
from agents.scripted_llm import Reply, Script, ScriptedLLMServer
from support.models import ActionProposal, Message
from tests import processes
from tests.support.chat_client import ChatSocket, wait_until_idle
from tests.support.harbour import harbour

pytestmark = pytest.mark.slow

INTENT = Reply.tool("IntentResult", {"intent": "calendar_access", "confidence": 0.9, "language": "en"})
SLOTS = {"action": "grant", "member": "Tomas Reyes", "calendar": "surgery", "calendar_owner": "me", "level": "view"}


@pytest.fixture
def world(transactional_db):
    yield harbour()
    wait_until_idle(timeout=30)


@pytest.fixture
def llm():
    script = Script()
    with ScriptedLLMServer(script) as base_url:
        yield script, base_url + "/v1"


def worker(asgi_server, base_url, name):
    return processes.celery_worker(
        platform_api_url=asgi_server,
        name=name,
        pool="prefork",
        concurrency=1,
        LLM_PROVIDER="openai",
        LLM_BASE_URL=base_url,
        LLM_MAX_RETRIES="0",
        LLM_TIMEOUT="30",
        CELERY_VISIBILITY_TIMEOUT="3",
        CELERY_RESTORE_INTERVAL="1",
    )


def wait_for_slots_request(script: Script, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sum("Slots" in str(r.get("tools")) for r in script.requests) < count:
        assert time.monotonic() < deadline, "the worker never asked the model for the slots"
        time.sleep(0.05)


def kill(process: psutil.Process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def assert_answered_once(conversation_id: int) -> None:
    (message,) = Message.objects.filter(conversation_id=conversation_id, role="user")
    assert message.status == "complete"
    assert ActionProposal.objects.filter(message=message).count() == 1
    assert Message.objects.filter(conversation_id=conversation_id, role="assistant").count() == 1
    runs = list(AgentRun.objects.filter(message_id=message.pk).order_by("id").values_list("attempt", "status", "error"))
    assert runs == [(1, "failed", "the worker was lost"), (2, "interrupted", "")]


def test_the_process_running_the_turn_is_killed(asgi_server, world, llm):
    script, base_url = llm
    script.add(INTENT, Reply.tool("Slots", SLOTS, delay=30))  # the first attempt hangs on the slots call...
    script.add(INTENT, Reply.tool("Slots", SLOTS))  # ...its retry gets quick answers
    with worker(asgi_server, base_url, "crash-child") as parent, ChatSocket(asgi_server, world.anna) as socket:
        conversation = socket.say("Give Tomas Reyes view access to my surgery calendar")["conversation"]
        wait_for_slots_request(script, 1)
        (child,) = psutil.Process(parent.pid).children()
        kill(child)  # the pool process dies mid-turn: the task goes back to the queue at once

        proposal = socket.until(lambda f: f["type"] == "form" and f.get("kind") == "proposal", timeout=60)["proposal"]
        wait_until_idle(timeout=30)

    assert proposal["summary"] == "Tomas Reyes will be able to see Dr Novak surgery"
    assert_answered_once(conversation)


def test_the_whole_worker_is_killed_and_another_takes_over(asgi_server, world, llm):
    script, base_url = llm
    script.add(INTENT, Reply.tool("Slots", SLOTS, delay=30), INTENT, Reply.tool("Slots", SLOTS))
    with ChatSocket(asgi_server, world.anna) as socket:
        with worker(asgi_server, base_url, "crash-all") as doomed:
            conversation = socket.say("Give Tomas Reyes view access to my surgery calendar")["conversation"]
            wait_for_slots_request(script, 1)
            parent = psutil.Process(doomed.pid)
            children = parent.children()
            kill(parent)
            for child in children:
                kill(child)
        # Nobody acknowledged the task: after the visibility timeout it goes to the next worker.
        with worker(asgi_server, base_url, "crash-heir"):
            proposal = socket.until(lambda f: f["type"] == "form" and f.get("kind") == "proposal", timeout=60)[
                "proposal"
            ]
            wait_until_idle(timeout=30)

    assert proposal["summary"] == "Tomas Reyes will be able to see Dr Novak surgery"
    assert_answered_once(conversation)
