"""A throw-away PostgreSQL cluster and an Orthanc using it as its index, for the scale runs (services.md recipe).

PostgreSQL refuses to run as root: as root the cluster is owned by the ``postgres`` system user (``runuser``);
as a normal user it runs as that user. ``stop()`` ends both by their own tools / PIDs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from diana_orthanc.testing import OrthancServer, free_port, start_orthanc

PGBIN = Path("/usr/lib/postgresql/15/bin")
PG_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"


class Postgres:
    """``initdb`` + ``pg_ctl start`` in a private folder on a free port; trust auth on loopback only."""

    def __init__(self, base: str | os.PathLike[str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else os.environ.get("USER", "diana")
        if self.as_root:
            shutil.chown(self.folder, "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> Postgres:
        data = self.folder / "data"
        self._run(PGBIN / "initdb", "-D", str(data), "-A", "trust", "-U", self.user)
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(PGBIN / "pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.folder / "pg.log"), "-w", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.1)
        self._run(PGBIN / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "orthanc")
        return self

    def stop(self) -> None:
        self._run(PGBIN / "pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def orthanc_config(self) -> dict[str, Any]:
        return {"Plugins": [PG_PLUGIN],
                "PostgreSQL": {"EnableIndex": True, "EnableStorage": False, "Host": "127.0.0.1", "Port": self.port,
                               "Database": "orthanc", "Username": self.user, "Password": "", "Lock": False}}

    def cpu_seconds(self) -> float:
        """CPU seconds of the postmaster and its children (the backends Orthanc talks to); 0 when unreadable."""
        try:
            main = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        total = 0.0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == main or int(fields[1]) == main:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def database_bytes(self) -> int:
        return sum(f.stat().st_size for f in (self.folder / "data").rglob("*") if f.is_file())


def start_archive(base: str | os.PathLike[str], name: str, pg: Postgres | None) -> OrthancServer:
    """An Orthanc named ``name`` under base: with ``pg`` its index is that PostgreSQL, else Orthanc's SQLite."""
    extra: dict[str, Any] = {"StableAge": 60, "HttpThreadsCount": 16}
    if pg is not None:
        extra.update(pg.orthanc_config())
    return start_orthanc(base, name, name.upper()[:16], extra_config=extra, timeout=60)
