"""Ports for where a job's work runs (``Executor``) and where its record lives (``JobState``).

A ``WorkUnit`` is plain data, so it crosses process boundaries (a Celery message): the job id, the kind of work, one
worklist item / directory batch / file batch, the *names* of the services, and options. Secrets never travel: each
worker builds its endpoints from its own service file and environment. The in-process executor and the job-folder
state are the embedded defaults (``diana_core.usecases.executors`` / ``.jobstate``); ``diana-dicom-celery`` provides
the distributed ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
from attrs import define, field

UNIT_KINDS = ("collect", "index", "upload")
"""collect: one worklist study; index: one directory batch; upload: one file batch."""


@define(frozen=True)
class WorkUnit:
    """One unit of a job, as plain data: ``item`` is a worklist row / {"dirs": [...]} / {"files": [...]};
    ``services`` maps roles (source, dest, registry) to service names; ``options`` holds plain settings."""

    job: str
    kind: str
    key: str
    item: dict[str, Any] = field(factory=dict)
    services: dict[str, str] = field(factory=dict)
    options: dict[str, Any] = field(factory=dict)

    def asdict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def fromdict(cls, data: Mapping[str, Any]) -> WorkUnit:
        return cls(**{k: data[k] for k in ("job", "kind", "key", "item", "services", "options") if k in data})


@define(frozen=True)
class UnitResult:
    """What one unit came to: outcome done | skipped | resolved | failed | held, instances or files moved,
    per-kind counters (index: checked/registered/bad), the reason of a failure (no PHI), and which worker ran it."""

    job: str
    kind: str
    key: str
    outcome: str
    count: int = 0
    counters: dict[str, int] = field(factory=dict)
    error: str | None = None
    worker: str = "local"
    failures: list[tuple[str, str]] = field(factory=list)

    def asdict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def fromdict(cls, data: Mapping[str, Any]) -> UnitResult:
        data = dict(data)
        data["failures"] = [tuple(f) for f in data.get("failures", [])]
        return cls(**data)


@runtime_checkable
class Executor(Protocol):
    """Runs work units somewhere (a local pool, Celery workers) and reports one ``UnitResult`` per unit."""

    name: str

    def submit(self, unit: WorkUnit) -> None:
        """Queue one unit; returns at once. Raises EndpointUnavailable when the queue cannot be reached."""

    def results(self) -> Iterator[UnitResult]:
        """Results of every unit submitted so far, in completion order; blocks until all have reported."""

    def close(self) -> None:
        """Release pools and connections; safe to call twice."""


@runtime_checkable
class JobState(Protocol):
    """A job's record: journal entries by key (status, ids, attempts, error), pseudonym key rows, job info, and a
    per-key claim so that a redelivered unit never runs beside a live copy of itself."""

    job: str
    scratch: Path  # a local folder for temporary files of this process

    def get(self, key: str) -> Any:
        """The journal entry of ``key`` (``.status``, ``.dest_oid``, ``.attempts``...), or None."""

    def mark(self, key: str, status: str, **values: Any) -> None:
        """Record a state change of ``key`` durably (values: source_oid, dest_oid, instances, error)."""

    def entries(self, status: str | None = None) -> Iterator[Any]:
        """Journal entries (all, or those in ``status``)."""

    def counts(self) -> dict[str, int]:
        """Number of entries per status."""

    def add_key_row(self, row: Mapping[str, str]) -> None:
        """Store one original -> pseudonym row durably (before the study is marked done)."""

    def key_rows(self) -> list[dict[str, str]]:
        """Every key row stored so far."""

    def forget_key_rows(self, keys: Iterable[str]) -> None:
        """Drop the key rows of ``keys`` once the job's key file holds them durably (no second copy of the
        re-identification table in a shared store); a store whose key rows are the key file keeps them."""

    def purge(self, compact: bool = False) -> int:
        """Delete what the store holds of this job (journal, key rows, facts, claims; a folder's scratch);
        ``compact``: also have the store drop deleted data from its on-disk log. Returns the records removed."""

    def claim(self, key: str) -> AbstractContextManager[bool]:
        """Hold ``key`` while it is worked on; yields False when another live worker holds it."""

    def set_info(self, **values: Any) -> None:
        """Store job facts (started, total, executor, kind) for status views."""

    def info(self) -> dict[str, Any]:
        """The job facts stored by ``set_info``."""

    def done_times(self) -> list[tuple[float, str]]:
        """(time, worker) of every entry that is done: rates and per-worker counts come from these."""

    def close(self) -> None:
        """Release files and connections."""


@runtime_checkable
class ExecutorProvider(Protocol):
    """A service-file entry (e.g. ctype CeleryExecutor) that builds a distributed executor and its shared state."""

    name: str

    def executor(self, limits: Mapping[str, Any] | None = None) -> Executor:
        """An executor for one job; ``limits`` ({source name: protection.Limits}) are published to every worker."""

    def job_state(self, job: str, key: str = "AccessionNumber") -> JobState:
        """The shared state of job ``job`` (what workers record into and the coordinator reads)."""
