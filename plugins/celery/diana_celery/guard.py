"""``RedisGuard``: each source's Limits enforced across every worker, with the counters in Redis.

Concurrency: a sorted set of slot tokens scored by expiry (a dead worker's slot lapses after ``slot_ttl``; live ones
are renewed). Rate: a token bucket updated atomically by a Lua script on Redis time. Window: each worker's local
clock; outside it the unit waits (held) and re-reads the limits, so a coordinator can change them mid-job.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from diana_core.protection import Limits, OnHold

LIMITS_KEY = "diana:limits"

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return 1
"""
_RENEW = """
local t = redis.call('TIME')
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1]), ARGV[2]) end
return 1
"""
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 86400)
return tostring(wait)
"""


class RedisGuard:
    """Guard port shared by every worker on one Redis (see module doc)."""

    def __init__(self, client: Any, slot_ttl: float = 60.0, poll: float = 1.0,
                 now: Callable[[], datetime] = datetime.now) -> None:
        self.redis = client
        self.slot_ttl = slot_ttl
        self.poll = poll
        self.now = now
        self._cache: tuple[float, dict[str, Limits]] = (0.0, {})

    def publish(self, limits: Mapping[str, Limits]) -> None:
        """Make ``limits`` ({source: Limits}) the ones every worker applies (read again within ``poll`` seconds)."""
        if limits:
            self.redis.hset(LIMITS_KEY, mapping={s: json.dumps(lim.asdict()) for s, lim in limits.items()})

    def limits(self, source: str) -> Limits | None:
        stamp, cached = self._cache
        if time.monotonic() - stamp > self.poll:
            raw = self.redis.hgetall(LIMITS_KEY)
            cached = {s: Limits.from_mapping(json.loads(v)) for s, v in raw.items()}
            self._cache = (time.monotonic(), cached)
        return cached.get(source)

    @staticmethod
    def keys(source: str) -> dict[str, str]:
        base = f"diana:guard:{source}:"
        return {n: base + n for n in ("slots", "peak", "held", "bucket")}

    def stats(self, source: str) -> dict[str, int]:
        """Units active now, the most ever active at once, and units held right now."""
        k = self.keys(source)
        return {"active": int(self.redis.zcard(k["slots"])), "peak": int(self.redis.get(k["peak"]) or 0),
                "held": int(self.redis.get(k["held"]) or 0)}

    @contextlib.contextmanager
    def slot(self, source: str, on_hold: OnHold | None = None) -> Iterator[None]:
        k = self.keys(source)
        token = secrets.token_hex(8)
        held = False

        def hold(reason: str) -> None:
            nonlocal held
            if not held:
                self.redis.incr(k["held"])
                if on_hold is not None:
                    on_hold(reason)
            held = True

        try:
            limits = self._wait_for_slot(source, token, hold)
            stop = threading.Event()
            renewer = None
            if limits is not None and limits.max_concurrent:
                renewer = threading.Thread(target=self._renew, args=(k["slots"], token, stop), daemon=True,
                                           name="diana-slot")
                renewer.start()
            try:
                if held:
                    self.redis.decr(k["held"])
                    held = False
                if limits is not None and limits.rate:
                    while (wait := float(self.redis.eval(_BUCKET, 1, k["bucket"], limits.rate, limits.burst))) > 0:
                        time.sleep(wait)
                yield
            finally:
                stop.set()
                if renewer is not None:
                    renewer.join()
                    self.redis.zrem(k["slots"], token)
        finally:
            if held:
                self.redis.decr(k["held"])

    def _wait_for_slot(self, source: str, token: str, hold: Callable[[str], None]) -> Limits | None:
        k = self.keys(source)
        while True:
            limits = self.limits(source)
            if limits is None:
                return None
            window = limits.transfer_window
            if window is not None and not window.contains(self.now()):
                hold("window")
                time.sleep(min(self.poll, max(window.seconds_until_open(self.now()), 0.01)))
                continue
            if not limits.max_concurrent:
                return limits
            if int(self.redis.eval(_ACQUIRE, 2, k["slots"], k["peak"], self.slot_ttl, limits.max_concurrent, token)):
                return limits
            hold("busy")
            time.sleep(min(self.poll, 0.2))

    def _renew(self, key: str, token: str, stop: threading.Event) -> None:
        while not stop.wait(self.slot_ttl / 3):
            with contextlib.suppress(Exception):  # a missed renewal only shortens the slot
                self.redis.eval(_RENEW, 1, key, self.slot_ttl, token)
