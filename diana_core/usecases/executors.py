"""The in-process ``Executor``: work units run by a bounded thread pool in this process (the embedded default).

With ``workers`` <= 1 units run one after another as they are submitted (no thread at all), which is what the
collector did before executors existed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from diana_core.execution import UnitResult, WorkUnit

Runner = Callable[[WorkUnit], UnitResult]


class ThreadExecutor:
    """Runs ``runner(unit)`` for each submitted unit in up to ``workers`` threads of this process."""

    name = "local"

    def __init__(self, runner: Runner, workers: int = 1, thread_name: str = "diana-work") -> None:
        self.runner = runner
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name) if workers > 1 else None
        self._pending: list[Future[UnitResult]] = []
        self._ready: deque[UnitResult] = deque()

    def submit(self, unit: WorkUnit) -> None:
        """Queue one unit (run now when there is no pool)."""
        if self._pool is None:
            self._ready.append(self.runner(unit))
        else:
            self._pending.append(self._pool.submit(self.runner, unit))

    def results(self) -> Iterator[UnitResult]:
        """Results of every unit submitted so far, as they complete."""
        while self._ready:
            yield self._ready.popleft()
        pending, self._pending = self._pending, []
        for fut in as_completed(pending):
            yield fut.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> ThreadExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
