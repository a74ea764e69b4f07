"""Rate limits per person, shared by every process through the Redis cache (fixed windows).

A window's counter is created with its expiry (`add`) and incremented atomically (`incr`, Redis INCR): two
ASGI replicas counting the same person never both let the limit's next request through.
"""

import time

from django.core.cache import cache

from governance.errors import RateLimited


def rate_limit_take(*, key: str, limit: int, window: int, detail: str, peek: bool = False) -> None:
    """Count one more for `key` in the current window of `window` seconds; RateLimited past `limit`.
    `peek`: only check that one more would still be allowed, counting nothing."""
    if limit <= 0:
        return
    now = int(time.time())
    start = now - now % window
    counter = f"ratelimit:{key}:{start}"
    if peek:
        count = (cache.get(counter) or 0) + 1
    else:
        cache.add(counter, 0, timeout=window + 1)
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between add and incr: this is the window's first
            cache.add(counter, 1, timeout=window + 1)
            count = 1
    if count > limit:
        raise RateLimited(detail, retry_after=max(1, start + window - now))
