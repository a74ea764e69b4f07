"""Sending to the channel layer from sync code (views, services, workers), for every app.

`async_to_sync` outside an event loop starts a new thread and a new event loop on every call, and
channels_redis then opens a new Redis connection for that loop: several ms of CPU per frame. Inside a
thread that already runs an event loop it refuses to work at all. One event loop per process, in a daemon
thread, serves every send instead.
"""

import asyncio
import os
import threading

from channels.layers import get_channel_layer

LIVE_SEND_TIMEOUT = 5.0
_live_lock = threading.Lock()
_live_loop: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, loop): a forked child makes its own


def _loop_for_live_frames() -> asyncio.AbstractEventLoop:
    global _live_loop
    with _live_lock:
        if _live_loop is None or _live_loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-frames", daemon=True).start()
            _live_loop = (os.getpid(), loop)
        return _live_loop[1]


def group_send_live(group: str, message: dict) -> None:
    """Send a channel-layer message to a group, now (nothing is sent when no channel layer is configured)."""
    layer = get_channel_layer()
    if layer is None:
        return
    coroutine = layer.group_send(group, message)
    asyncio.run_coroutine_threadsafe(coroutine, _loop_for_live_frames()).result(timeout=LIVE_SEND_TIMEOUT)
