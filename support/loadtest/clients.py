"""The load itself: N chat WebSockets in one asyncio process, messages at an aggregate rate, the figures.

Open loop: the send times are drawn in advance (Poisson arrivals or fixed spacing) and each message goes
out at its time whatever the server is doing, to a connection that has no turn in flight (a person
waits for Alfred's answer before writing again). If every connection is busy, the message is not sent
and counts as an error (`no_idle_connection`): the load asked for more than N people can send.

A turn is complete when the final assistant `message` that answers the client's message arrives
(`reply_to` is the id the `ack` gave). Its overhead is that time minus the time the scripted model
spent on it by script (see `model.ModelLedger`).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from support.loadtest.model import marked
from support.loadtest.stack import Account

MESSAGE = "What dose of ibuprofen should I give my child for a fever?"  # out of scope: refused
CONNECT_CONCURRENCY = 50
DRAIN_GRACE = 1.0
RUN_OVER = ("done", "failed", "waiting_confirmation", "handed_off")  # a run's last status
RELEASE_AFTER = 5.0  # seconds after its reply a connection is free again even without that status


@dataclass
class Turn:
    connection: int
    client_id: str
    sent: float
    first: float | None = None  # the first frame after sending (the ack, or the stored message's event)
    ack: float | None = None
    message_id: int | None = None
    running: float | None = None  # the `running` status: a worker took the turn
    first_token: float | None = None
    last_token: float | None = None
    done: float | None = None
    reply: str = ""
    error: str | None = None


@dataclass
class Connection:
    index: int
    url: str
    account: Account
    ws: object | None = None
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    turn: Turn | None = None  # in flight
    last: Turn | None = None
    early: dict[int, tuple[float, str]] = field(default_factory=dict)  # replies seen before their ack
    closed: bool = False
    finishing: float | None = None  # the reply arrived at this time; the run's last status has not yet


@dataclass
class LoadResult:
    turns: list[Turn]
    errors: Counter
    connections: int
    started: float
    sends_done: float
    finished: float
    send_lag_ms: list[float]
    warmup: dict = field(default_factory=dict)


def schedule(*, rate: float, duration: float, arrival: str, rng: random.Random) -> list[float]:
    """Send times (seconds from the start), bounded: at most rate × duration × 2 + 10 of them."""
    if rate <= 0 or duration <= 0:
        return []
    if arrival == "fixed":
        count = int(math.floor(rate * duration))
        return [index / rate for index in range(count)]
    times, now, bound = [], 0.0, int(rate * duration * 2) + 10
    while len(times) < bound:
        now += rng.expovariate(rate)
        if now >= duration:
            break
        times.append(now)
    return times


class LoadRun:
    def __init__(
        self,
        *,
        urls: list[str],
        accounts: list[Account],
        rate: float,
        duration: float,
        arrival: str = "poisson",
        seed: int = 1,
        turn_timeout: float = 30.0,
        cookie_name: str = "sessionid",
        expect_reply_prefix: str | None = None,
        warmup: int = 0,
        log: Callable[[str], None] = print,
        on_sending: Callable[[], None] | None = None,
        on_drained: Callable[[], None] | None = None,
    ) -> None:
        self.on_sending = on_sending  # called once the connections are open, before the first message
        self.on_drained = on_drained  # called when the last turn is done (or lost), before closing
        self.connections = [
            Connection(index=index, url=urls[index % len(urls)], account=account)
            for index, account in enumerate(accounts)
        ]
        self.rate = rate
        self.duration = duration
        self.arrival = arrival
        self.rng = random.Random(seed)  # noqa: S311 — a load schedule, not a secret
        self.turn_timeout = turn_timeout
        self.cookie_name = cookie_name
        self.expect_reply_prefix = expect_reply_prefix
        self.warmup = warmup
        self.warmup_turns: list[Turn] = []
        self.warmup_errors: Counter = Counter()
        self.log = log
        self.turns: list[Turn] = []
        self.errors: Counter = Counter()
        self.idle: set[int] = set()
        self.stopping = False
        self.readers: list[asyncio.Task] = []

    # --- connections ----------------------------------------------------------------------------------

    async def _open(self, connection: Connection, limit: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        host = urlsplit(connection.url).netloc
        async with limit:
            try:
                connection.ws = await connect(
                    f"ws://{host}/ws/chat/",
                    additional_headers={"Cookie": f"{self.cookie_name}={connection.account.session_key}"},
                    origin=f"http://{host}",
                    open_timeout=20,
                    ping_interval=None,  # as a browser: no client pings
                    close_timeout=2,
                    proxy=None,
                    max_queue=None,
                )
            except Exception as error:  # noqa: BLE001 — any failure to connect is counted, not raised
                self.errors[f"connect_failed:{type(error).__name__}"] += 1
                return
            self.readers.append(asyncio.create_task(self._read(connection)))
            await connection.ws.send(
                json.dumps({"type": "resume", "conversation": connection.account.conversation_id, "after": 0})
            )
            try:
                await asyncio.wait_for(connection.resumed.wait(), timeout=20)
            except TimeoutError:
                self.errors["connect_failed:no_resumed"] += 1
                return
            if not connection.closed:
                self.idle.add(connection.index)

    async def _read(self, connection: Connection) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        try:
            async for raw in connection.ws:
                self._on_frame(connection, loop.time(), json.loads(raw))
        except ConnectionClosed:
            pass
        except Exception as error:  # noqa: BLE001 — counted as a closed socket
            self.errors[f"reader:{type(error).__name__}"] += 1
        connection.closed = True
        self.idle.discard(connection.index)
        if not self.stopping:
            code = getattr(connection.ws, "close_code", None)
            self.errors[f"closed:{code}"] += 1
            if connection.turn is not None and connection.turn.error is None:
                connection.turn.error = "closed"

    def _on_frame(self, connection: Connection, now: float, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "resumed":
            connection.resumed.set()
            return
        turn = connection.turn
        if kind == "error":
            self.errors[f"error_frame:{frame.get('code')}"] += 1
            if turn is not None and turn.error is None and frame.get("ref") in (None, turn.client_id):
                turn.error = f"error_frame:{frame.get('code')}"
            return
        if kind == "status" and frame.get("state") == "failed":
            target = turn or connection.last
            if target is not None and target.error is None:
                target.error = "turn_failed"
        if kind == "status" and frame.get("state") in RUN_OVER and turn is None:
            self._release(connection)
            return
        if turn is None:
            return  # catch-up of earlier events, or late frames of a turn that timed out
        if turn.first is None and self._answers_send(turn, kind, frame):
            turn.first = now
        if kind == "ack" and frame.get("id") == turn.client_id:
            turn.ack = now
            turn.message_id = (frame.get("message") or {}).get("id")
            if turn.message_id in connection.early:
                self._complete(connection, turn, *connection.early.pop(turn.message_id))
        elif kind == "status" and frame.get("state") == "running" and turn.running is None:
            turn.running = now
        elif kind == "token":
            turn.first_token = turn.first_token or now
            turn.last_token = now
        elif kind == "message":
            message = frame.get("message") or {}
            if message.get("role") != "assistant":
                return
            if turn.message_id is None:
                connection.early[message.get("reply_to")] = (now, message.get("text") or "")
            elif message.get("reply_to") == turn.message_id:
                self._complete(connection, turn, now, message.get("text") or "")
        elif kind == "form" and turn.message_id is not None:
            self._complete(connection, turn, now, "")

    @staticmethod
    def _answers_send(turn: Turn, kind: str, frame: dict) -> bool:
        """The frames the send itself causes: its ack, and the stored event of the person's message."""
        if kind == "ack":
            return frame.get("id") == turn.client_id
        return kind == "message" and (frame.get("message") or {}).get("client_id") == turn.client_id

    def _complete(self, connection: Connection, turn: Turn, now: float, text: str) -> None:
        turn.done = now
        turn.reply = text
        if self.expect_reply_prefix is not None and not text.startswith(self.expect_reply_prefix) and not turn.error:
            turn.error = "unexpected_reply"  # not the model's reply: a fallback or a failure text
        connection.turn = None
        connection.last = turn
        connection.early.clear()
        # Free for the next message once the run is over (its last status), as a person reads the reply
        # first: a message sent while the run still holds the conversation would wait for it.
        connection.finishing = now

    def _release(self, connection: Connection) -> None:
        connection.finishing = None
        if not connection.closed and connection.turn is None:
            self.idle.add(connection.index)

    # --- the load -------------------------------------------------------------------------------------

    async def _send(self, connection: Connection, turn: Turn) -> None:
        frame = {
            "type": "message",
            "id": turn.client_id,
            "conversation": connection.account.conversation_id,
            "text": marked(MESSAGE, turn.client_id),
        }
        try:
            await connection.ws.send(json.dumps(frame))
        except Exception as error:  # noqa: BLE001 — a send on a closing socket
            if turn.error is None:
                turn.error = f"send_failed:{type(error).__name__}"

    def _watch_timeouts(self, now: float) -> None:
        for connection in self.connections:
            turn = connection.turn
            if turn is not None and turn.error is None and now - turn.sent > self.turn_timeout:
                turn.error = "timeout"
            if connection.finishing is not None and now - connection.finishing > RELEASE_AFTER:
                self._release(connection)  # the run's last status was lost (the channel layer may drop)

    def _in_flight(self) -> int:
        return sum(1 for c in self.connections if c.turn is not None and c.turn.error is None)

    async def run(self) -> LoadResult:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        opened = time.monotonic()
        await asyncio.gather(*(self._open(c, limit) for c in self.connections))
        connected = len(self.idle)
        self.log(f"{connected}/{len(self.connections)} connections open in {time.monotonic() - opened:.1f} s")
        if self.warmup and self.idle:
            await self._warm_up(loop)
        times = schedule(rate=self.rate, duration=self.duration, arrival=self.arrival, rng=self.rng)
        if self.on_sending is not None:
            self.on_sending()
        send_lag_ms: list[float] = []
        pending_sends: set[asyncio.Task] = set()
        started = loop.time() + 0.05
        next_progress = started + 5
        for offset in times:
            target = started + offset
            while (wait := target - loop.time()) > 0:
                await asyncio.sleep(min(wait, 0.25))
                self._watch_timeouts(loop.time())
            now = loop.time()
            send_lag_ms.append((now - target) * 1000)
            if now >= next_progress:
                self._progress(now - started)
                next_progress += 5
            if not self.idle:
                self.errors["no_idle_connection"] += 1
                continue
            connection = self.connections[self.rng.choice(sorted(self.idle))]
            self.idle.discard(connection.index)
            turn = Turn(connection=connection.index, client_id=uuid.uuid4().hex, sent=now)
            connection.turn = turn
            self.turns.append(turn)
            task = asyncio.create_task(self._send(connection, turn))
            pending_sends.add(task)
            task.add_done_callback(pending_sends.discard)
        sends_done = max(loop.time(), started + self.duration)
        # Let the turns in flight finish, bounded by the turn timeout.
        while self._in_flight() and loop.time() - sends_done < self.turn_timeout + DRAIN_GRACE:
            await asyncio.sleep(0.05)
            self._watch_timeouts(loop.time())
        finished = loop.time()
        if self.on_drained is not None:
            self.on_drained()
        for connection in self.connections:
            if connection.turn is not None and connection.turn.error is None:
                connection.turn.error = "never_completed"
        await self.close()
        for turn in self.turns:
            # Error frames and closed sockets are counted as they happen; the other turn errors here.
            if turn.error and not turn.error.startswith(("error_frame", "closed")):
                self.errors[turn.error] += 1
        return LoadResult(
            turns=self.turns,
            errors=+self.errors,
            connections=connected,
            started=started,
            sends_done=sends_done,
            finished=finished,
            send_lag_ms=send_lag_ms,
            warmup={
                "turns": len(self.warmup_turns),
                "completed": sum(1 for t in self.warmup_turns if t.done is not None and t.error is None),
                "errors": dict(+self.warmup_errors),
            },
        )

    async def _warm_up(self, loop) -> None:
        """Turns sent all at once before the measured ones, not counted: every worker process pays for
        its imports, its compiled graph, its model client and its connections on its first turn."""
        started = loop.time()
        errors_before = Counter(self.errors)
        chosen = sorted(self.idle)[: self.warmup]
        for index in chosen:
            connection = self.connections[index]
            self.idle.discard(index)
            connection.turn = Turn(connection=index, client_id=uuid.uuid4().hex, sent=loop.time())
            self.warmup_turns.append(connection.turn)
            await self._send(connection, connection.turn)
        while self._in_flight() and loop.time() - started < self.turn_timeout:
            await asyncio.sleep(0.05)
            self._watch_timeouts(loop.time())
        while any(self.connections[t.connection].finishing for t in self.warmup_turns):
            if loop.time() - started > self.turn_timeout + RELEASE_AFTER:
                break
            await asyncio.sleep(0.05)
            self._watch_timeouts(loop.time())
        for turn in self.warmup_turns:
            connection = self.connections[turn.connection]
            if connection.turn is turn:  # lost: free its connection for the measured turns anyway
                turn.error = turn.error or "never_completed"
                connection.turn = None
            self._release(connection)
        done = sum(1 for t in self.warmup_turns if t.done is not None and t.error is None)
        self.log(f"warm-up: {done}/{len(self.warmup_turns)} turns in {loop.time() - started:.1f} s (not counted)")
        # What went wrong during the warm-up is reported apart from the measured window.
        turn_errors = Counter(
            t.error for t in self.warmup_turns if t.error and not t.error.startswith(("error_frame", "closed"))
        )
        self.warmup_errors = (self.errors - errors_before) + turn_errors
        self.errors = errors_before

    def _progress(self, elapsed: float) -> None:
        done = sum(1 for t in self.turns if t.done is not None and t.error is None)
        self.log(
            f"  t={elapsed:5.1f} s  sent {len(self.turns)}  completed {done}  in flight {self._in_flight()}  "
            f"errors {sum(self.errors.values()) + sum(1 for t in self.turns if t.error)}"
        )

    async def close(self) -> None:
        self.stopping = True
        sockets = [c.ws for c in self.connections if c.ws is not None]
        if sockets:
            await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in sockets], timeout=5)
        for task in self.readers:
            task.cancel()
        if self.readers:
            await asyncio.wait(self.readers, timeout=2)


# --- Figures ---------------------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict:
    """p50/p95/p99 (and n, max) in the samples' unit, rounded; None when there is no sample."""
    if not samples:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    if len(samples) == 1:
        value = round(samples[0], 1)
        return {"p50": value, "p95": value, "p99": value, "max": value, "n": 1}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
        "max": round(max(samples), 1),
        "n": len(samples),
    }


def figures(result: LoadResult, ledger) -> dict:
    """The report's measured part. `ledger` gives (model calls, scripted seconds) per client id."""
    completed = [t for t in result.turns if t.done is not None and t.error is None]
    overhead, completion, model_ms, calls = [], [], [], Counter()
    for turn in completed:
        count, seconds = ledger.turn(turn.client_id) if ledger is not None else (0, 0.0)
        calls[count] += 1
        total = (turn.done - turn.sent) * 1000
        completion.append(total)
        model_ms.append(seconds * 1000)
        overhead.append(total - seconds * 1000)

    def phase(start: str, end: str) -> dict:
        values = [
            (getattr(t, end) - getattr(t, start)) * 1000
            for t in completed
            if getattr(t, start) is not None and getattr(t, end) is not None
        ]
        return percentiles(values)

    window = (max((t.done for t in completed), default=result.sends_done) - result.started) if completed else 0
    errors = dict(sorted(result.errors.items()))
    return {
        "turns_per_s": round(len(completed) / window, 2) if window > 0 else 0.0,
        "overhead_ms": percentiles(overhead),
        "first_event_ms": percentiles([(t.first - t.sent) * 1000 for t in result.turns if t.first is not None]),
        "errors": {"total": sum(errors.values()), **errors},
        "connections": result.connections,
        "turns_sent": len(result.turns),
        "turns_completed": len(completed),
        "completion_ms": percentiles(completion),
        "model_ms": percentiles(model_ms),
        "model_calls_per_turn": {str(k): v for k, v in sorted(calls.items())},
        "phases_ms": {
            "send_to_ack": phase("sent", "ack"),
            "send_to_running": phase("sent", "running"),
            "running_to_first_token": phase("running", "first_token"),
            "first_to_last_token": phase("first_token", "last_token"),
            "last_token_to_message": phase("last_token", "done"),
        },
        "send_lag_ms": percentiles(result.send_lag_ms),
        "warmup": result.warmup,
        "window_s": round(window, 2),
    }
