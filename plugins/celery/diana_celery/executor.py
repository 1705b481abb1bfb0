"""``CeleryExecutor``: the service-file kind that hands Diana's work units to Celery workers over Redis.

    cluster: {ctype: CeleryExecutor, broker: "redis://:${REDIS_PASSWORD}@queue.example.org:6379/0",
              visibility_timeout: 1800, limits: {hospital_pacs: {max_concurrent: 4, rate: 0.5, window: "19:00-07:00"}}}

The coordinator submits units and reads their results from a reply list in Redis; workers (``diana worker``) build
endpoints from their own service file and environment, record into the shared ``RedisJobState`` and honour the
per-source limits published here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define, field

from diana_celery.app import QUEUE, TASK, broker_errors, make_app, redis_client, safe_url
from diana_celery.guard import RedisGuard
from diana_celery.jobstate import RedisJobState
from diana_core.execution import UnitResult, WorkUnit
from diana_core.ports import secret_field
from diana_core.protection import Limits, parse_limits

logger = logging.getLogger(__name__)

REPLY_TTL = 7 * 86400


@define(kw_only=True)
class CeleryExecutor:
    """Celery over Redis: ``broker`` URL (its password from ${ENV}), ``visibility_timeout`` (s) before a unit whose
    worker died is redelivered, ``claim_ttl`` (s) a dead worker's hold on a study lasts, per-source ``limits``.

    Fields:
        name: The executor's name in the service file.
        broker: Broker URL, e.g. `redis://:${REDIS_PASSWORD}@host:6379/0` (a secret: it may hold a password).
        visibility_timeout: Seconds before a unit whose worker died (no ack) is delivered to another worker.
        claim_ttl: Seconds a dead worker's claim on a study lasts before another worker may take it.
        queue: Celery queue the units go to (workers listen on it).
        limits: PACS protection per source service: {source: {concurrency, rate, window}} shared by all workers.
        poll: Seconds between checks for finished units.
    """

    name: str = "celery"
    broker: str = secret_field("redis://localhost:6379/0")
    visibility_timeout: float = 3600.0
    claim_ttl: float = 60.0
    queue: str = QUEUE
    limits: dict[str, dict[str, Any]] = field(factory=dict)
    poll: float = 1.0

    def __repr__(self) -> str:
        return f"CeleryExecutor(name={self.name!r}, broker={safe_url(self.broker)!r})"

    def executor(self, limits: Mapping[str, Any] | None = None) -> CeleryRunner:
        """A runner for one job; ``limits`` ({source: Limits}) are published to every worker through Redis."""
        runner = CeleryRunner(self)
        merged: dict[str, Limits] = {**parse_limits(self.limits), **dict(limits or {})}
        if merged:
            with broker_errors(self.broker, "publish limits"):
                RedisGuard(runner.redis).publish(merged)
        return runner

    def job_state(self, job: str, key: str = "AccessionNumber") -> RedisJobState:
        """The shared state of ``job`` in the broker's Redis."""
        return RedisJobState(redis_client(self.broker), job, key=key, worker="coordinator", claim_ttl=self.claim_ttl,
                             broker=self.broker)


class CeleryRunner:
    """Executor port over Celery: ``submit`` sends one task message; ``results`` pops replies as workers finish."""

    name = "celery"

    def __init__(self, config: CeleryExecutor) -> None:
        self.config = config
        self.app = make_app(config.broker, config.visibility_timeout, config.queue)
        self.redis = redis_client(config.broker)
        self.reply = f"diana:reply:{uuid.uuid4().hex}"
        self._pending: set[str] = set()

    def submit(self, unit: WorkUnit) -> None:
        """Queue one unit on the broker (the message holds names and options, never secrets)."""
        with broker_errors(self.config.broker, f"submit {unit.kind} unit"):
            self.app.send_task(TASK, args=[{"unit": unit.asdict(), "reply": self.reply}], queue=self.config.queue)
        self._pending.add(unit.key)

    def results(self) -> Iterator[UnitResult]:
        """One result per submitted unit, as workers report them (a redelivered unit's second report is dropped)."""
        while self._pending:
            with broker_errors(self.config.broker, "read results"):
                popped = self.redis.blpop([self.reply], timeout=max(1, int(self.config.poll)))
            if popped is None:
                continue
            result = UnitResult.fromdict(json.loads(popped[1]))
            if result.key in self._pending:
                self._pending.discard(result.key)
                yield result

    def close(self) -> None:
        try:
            with broker_errors(self.config.broker, "close"):
                self.redis.delete(self.reply)
        except Exception:  # noqa: BLE001 - closing after an outage must not hide the error that caused it
            logger.debug("could not remove the reply list")
        self.redis.close()
        self.app.close()
