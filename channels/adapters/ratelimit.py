"""Rate limits of a marketplace's API: a token bucket per seller and operation, shared by
every worker through Redis (one Lua script: refill, then take a token or say how long to
wait), so two workers pulling and pushing for one seller never exceed the seller's plan
together. Without Redis (development on SQLite) the bucket lives in the process.

The clock is Redis's own (`TIME`), so workers whose clocks differ agree on the refill.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache

from django.conf import settings

# KEYS[1] the bucket; ARGV rate (tokens/s), burst. Returns the seconds to wait (0: taken).
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(data[1]) or burst
local at = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class LocalBuckets:
    """The same bucket in this process (no Redis configured)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate: float, burst: float) -> float:
        with self.lock:
            now = time.monotonic()
            tokens, at = self.state.get(key, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self.state[key] = (tokens - 1 if not wait else tokens, now)
            return wait


class RedisBuckets:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.script = self.client.register_script(TAKE)

    def take(self, key: str, rate: float, burst: float) -> float:
        return float(self.script(keys=[key], args=[rate, burst]))


@lru_cache(maxsize=1)
def buckets() -> LocalBuckets | RedisBuckets:
    url = getattr(settings, "REDIS_URL", "")
    return RedisBuckets(url) if url else LocalBuckets()


def bucket_key(api: str, seller: str, operation: str) -> str:
    return f"uniware:ratelimit:{api}:{seller}:{operation}"
