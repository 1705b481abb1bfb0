"""Diana's Celery task: run one ``WorkUnit`` with endpoints this worker builds from its own service file.

collect: one study (``Collector.run_unit`` under the shared ``RedisGuard`` and ``RedisJobState``); index: one
directory batch; upload: one collection. The result is pushed to the coordinator's reply list; a study that another
live worker holds (a redelivered copy) is retried a little later instead of running twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from attrs import define, field

from diana_core.execution import UnitResult, WorkUnit

logger = logging.getLogger(__name__)

REPLY_TTL = 7 * 86400


@define
class WorkerContext:
    """What every task of this worker process shares: services (built once), the Redis client, settings."""

    services: Any
    redis: Any
    broker: str
    name: str = "worker"
    claim_ttl: float = 60.0
    busy_retry: float = 2.0
    guard: Any = field(default=None)


_context: WorkerContext | None = None


def configure(context: WorkerContext) -> None:
    """Install the context the tasks of this process use (``diana worker`` does this before consuming)."""
    global _context
    _context = context


def run_unit(task: Any, message: dict[str, Any]) -> None:
    """The Celery task body (bound): run the unit, push its result; retry later when another worker holds it."""
    from diana_core.errors import ConfigError

    if _context is None:
        raise ConfigError("this process is not a configured Diana worker (start it with `diana worker`)")
    ctx = _context
    unit = WorkUnit.fromdict(message["unit"])
    worker = str(getattr(task.request, "hostname", None) or ctx.name)
    try:
        result = _run(ctx, unit, worker)
    except Exception as exc:  # noqa: BLE001 - any crash of one unit is reported to the coordinator, never lost
        logger.warning("%s unit %s failed: %s", unit.kind, unit.key if unit.kind != "collect" else "-",
                       type(exc).__name__)
        result = UnitResult(unit.job, unit.kind, unit.key, "failed", error=f"{type(exc).__name__}: {exc}",
                            worker=worker)
    if result.outcome == "busy":
        raise task.retry(countdown=ctx.busy_retry, max_retries=None)
    pipe = ctx.redis.pipeline()
    pipe.rpush(message["reply"], json.dumps(result.asdict()))
    pipe.expire(message["reply"], REPLY_TTL)
    pipe.execute()


def _run(ctx: WorkerContext, unit: WorkUnit, worker: str) -> UnitResult:
    from diana_core.services import resolve_endpoint
    from diana_core.usecases.index_units import resolve_registry, run_index_unit, run_upload_unit
    from diana_core.usecases.indexer import FileIndexer

    if unit.kind == "collect":
        from diana_celery.jobstate import RedisJobState
        from diana_core.ports import StudyRetriever
        from diana_core.pseudonym import Pseudonymizer
        from diana_core.usecases.collector import Collector
        from diana_core.usecases.modality_source import ModalitySource

        opts = unit.options
        source = resolve_endpoint(unit.services["source"], ctx.services)
        if opts.get("domain") and not isinstance(source, StudyRetriever):
            source = ModalitySource(source, str(opts["domain"]))  # a modality of an Orthanc source
        dest = resolve_endpoint(unit.services["dest"], ctx.services) if unit.services.get("dest") else None
        key = str(opts.get("key_column", "AccessionNumber"))
        pseudonymizer = Pseudonymizer(uid_scheme=str(opts.get("uid_scheme", "keyed")),
                                      uid_root=str(opts.get("uid_root", "2.25")), app_id=str(opts.get("app_id", "dicom")))
        collector = Collector(key=key, pseudonymizer=pseudonymizer, guard=ctx.guard)
        state = RedisJobState(ctx.redis, unit.job, key=key, worker=worker, claim_ttl=ctx.claim_ttl, broker=ctx.broker)
        return collector.run_unit(unit, source, dest, state, worker=worker)
    registry = resolve_registry(unit.services["registry"], ctx.services)
    if unit.kind == "index":
        return run_index_unit(FileIndexer(), unit, registry, worker=worker)
    if unit.kind == "upload":
        dest = resolve_endpoint(unit.services["dest"], ctx.services)
        return run_upload_unit(FileIndexer(), unit, registry, dest, worker=worker)
    return UnitResult(unit.job, unit.kind, unit.key, "failed", error=f"unknown unit kind {unit.kind!r}", worker=worker)
