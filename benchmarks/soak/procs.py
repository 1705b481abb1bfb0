"""The soak's processes: the research Orthanc (restartable on the same ports and storage) and `diana watch`.

Every process is started here and stopped by its own PID (the machine is shared: never by name).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from diana_orthanc.testing import OrthancServer, free_port, start_orthanc

VENV_BIN = Path(sys.executable).parent


class Research:
    """The destination Orthanc: ``restart`` keeps its ports, credentials and storage (what a service restart does)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.http_port, self.dicom_port = free_port(), free_port()
        self.server: OrthancServer = start_orthanc(work, name="research", aet="RESEARCH", http_port=self.http_port,
                                                   dicom_port=self.dicom_port)
        self.restarts = 0

    def service_desc(self) -> dict[str, Any]:
        return self.server.service_desc()

    def stop(self) -> None:
        self.server.stop()

    def restart(self, down_seconds: float) -> None:
        """SIGTERM (Orthanc flushes its index), stay down ``down_seconds``, start again on the same ports."""
        self.server.stop()
        time.sleep(down_seconds)
        self.server = start_orthanc(self.work, name="research", aet="RESEARCH", user=self.server.user,
                                    password=self.server.password, http_port=self.http_port,
                                    dicom_port=self.dicom_port, timeout=60)
        self.restarts += 1

    def get(self, path: str, timeout: float = 30) -> Any:
        sess = self.server._session()
        try:
            response = sess.get(f"{self.server.url}{path}", timeout=timeout)
            response.raise_for_status()
            return response.json()
        finally:
            sess.close()

    def count(self) -> int | None:
        """Instances stored now (None while it is down)."""
        try:
            return int(self.get("/statistics", timeout=5)["CountInstances"])
        except Exception:  # noqa: BLE001 - down during a chaos restart
            return None


class Watch:
    """``diana -s services.yml watch -R routes.yml`` as systemd runs it (plain log lines on stderr, no -v)."""

    def __init__(self, work: Path, services: Path, routes: Path, status_port: int, ledger_keep: str = "7d") -> None:
        self.work, self.services, self.routes, self.status_port = work, services, routes, status_port
        self.ledger_keep = ledger_keep
        self.state = work / "state"
        self.log = work / "watch.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0
        self.kills: dict[str, int] = {"SIGTERM": 0, "SIGKILL": 0}
        self.exit_codes: list[int] = []
        self.skipped = 0  # deliveries the ledger skipped (summed over the daemon's lives)
        self._last_status: dict[str, Any] = {}

    def start(self) -> None:
        env = {**os.environ, "XDG_STATE_HOME": str(self.state), "TCP_NODELAY": "1"}
        cmd = [str(VENV_BIN / "diana"), "--log-format", "plain", "-s", str(self.services), "watch",
               "-R", str(self.routes), "--ledger", str(self.state / "ledger.sqlite"), "--ledger-keep", self.ledger_keep,
               "--deadletter", str(self.state / "deadletter.jsonl"), "--audit", str(self.state / "audit.jsonl"),
               "--status-port", str(self.status_port)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.work)
        self.started_at = time.monotonic()
        self.starts += 1
        self._last_status = {}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def status(self) -> dict[str, Any] | None:
        """/status.json of the running daemon (None while it starts or is down)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}/status.json", timeout=3) as rsp:
                status: dict[str, Any] = json.load(rsp)
        except (OSError, ValueError):
            return None
        self._last_status = status
        return status

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Signal the daemon by PID and reap it (SIGKILL after ``timeout`` of a SIGTERM)."""
        if self.proc is None:
            return
        self.status()  # its last per-rule counts (skipped deliveries) before it goes
        self.skipped += sum(int(r.get("skipped", 0)) for r in self._last_status.get("routes", []))
        if self.proc.poll() is None:
            self.kills[signal.Signals(sig).name] = self.kills.get(signal.Signals(sig).name, 0) + 1
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.exit_codes.append(int(self.proc.returncode))
        self.proc = None

    def wait_listening(self, port: int, timeout: float = 60) -> bool:
        """True once the receiver accepts an association (C-ECHO)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            done = subprocess.run(["/usr/bin/echoscu", "-aec", "DIANA", "127.0.0.1", str(port)],
                                  capture_output=True, timeout=30, check=False)
            if done.returncode == 0:
                return True
            time.sleep(0.5)
        return False
