"""``diana worker`` OS processes for tests and benchmarks: start, wait until consuming, kill -9, stop.

A worker counts as ready once its ``diana:worker:<name>`` key is in Redis (set after Celery's ``worker_ready``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_celery.worker import WORKER_KEY
from diana_core.processes import stop_process


@define
class WorkerProcess:
    """One ``diana -s SERVICES worker`` process; ``log`` holds its stderr. ``default_name``: started without ``-n``
    (``name`` must then be the default, diana@HOST)."""

    name: str
    services: Path
    log: Path
    concurrency: int = 2
    env: dict[str, str] = field(factory=dict)
    extra: list[str] = field(factory=list)
    default_name: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> WorkerProcess:
        cmd = [sys.executable, "-m", "diana_core.cli", "-s", str(self.services), "worker", "-c", str(self.concurrency),
               *([] if self.default_name else ["-n", self.name]), *self.extra]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **self.env})
        return self

    def wait_ready(self, client: Any, timeout: float = 60.0) -> WorkerProcess:
        """Poll Redis for the worker's announcement; RuntimeError with the log tail if it exits or never shows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited {self.proc.returncode}: {self.tail()}")
            if client.exists(WORKER_KEY + self.name):
                return self
            time.sleep(0.1)  # polling interval
        raise RuntimeError(f"worker {self.name} not ready after {timeout} s: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def kill9(self) -> None:
        """SIGKILL: the worker and its running units die at once, nothing is acknowledged."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL after ``timeout``; safe to call twice."""
        stop_process(self.proc, timeout)
        self.proc = None
