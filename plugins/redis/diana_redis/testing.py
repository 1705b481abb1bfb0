"""Real redis-server processes for tests and benchmarks (pytest fixtures, loaded by the repo's conftest).

``RedisServer.start()`` runs ``redis-server`` on a free loopback port with persistence off, polls PING, and
``stop()`` kills it by PID and waits. Fixtures: ``redis_server`` (no password), ``redis_server_auth``
(random password), both session-scoped, and ``redis_clean`` (function-scoped FLUSHALL on the open server).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from attrs import define, field

from diana_core.errors import EndpointUnavailable

INSTALL_HINT = "redis-server not found: install it with `apt-get install redis-server` (Debian/Ubuntu)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(host: str, port: int, password: str | None) -> bool:
    """Raw RESP PING (AUTH first when a password is set): True once the server answers."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            cmds = b""
            if password:
                pw = password.encode()
                cmds += b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw)
            cmds += b"*1\r\n$4\r\nPING\r\n"
            sock.sendall(cmds)
            data = b""
            while b"PONG" not in data and b"-" not in data[:1]:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                data += chunk
            return b"PONG" in data
    except OSError:
        return False


@define(kw_only=True)
class RedisServer:
    """One redis-server process on 127.0.0.1 (persistence off); stop() kills it by PID."""

    host: str = "127.0.0.1"
    port: int = field(factory=free_port)
    password: str | None = field(default=None, repr=False)
    binary: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _workdir: str | None = field(default=None, init=False, repr=False)

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the process and poll PING until it answers; EndpointUnavailable if it never does."""
        binary = self.binary or shutil.which("redis-server") or (
            "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self._workdir = tempfile.mkdtemp(prefix="diana-redis-")
        args = [binary, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", self._workdir, "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise EndpointUnavailable(f"redis-server on port {self.port} exited ({self._proc.returncode}): {err}")
            if _ping(self.host, self.port, self.password):
                return self
            time.sleep(0.02)  # polling interval, not a fixed wait
        self.stop()
        raise EndpointUnavailable(f"redis-server on port {self.port} did not answer PING within {timeout} s")

    def stop(self) -> None:
        """Kill by PID and reap the process; safe to call twice."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def service_desc(self) -> dict[str, Any]:
        """A service-file entry for this server (``{"ctype": "Redis", ...}``)."""
        desc: dict[str, Any] = {"ctype": "Redis", "host": self.host, "port": self.port}
        if self.password:
            desc["password"] = self.password
        return desc

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server without a password, for the whole test session."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server_auth() -> Iterator[RedisServer]:
    """A real redis-server protected by a random ``requirepass`` password."""
    with RedisServer(password=secrets.token_urlsafe(16)) as server:
        yield server


@pytest.fixture()
def redis_clean(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The password-less server, emptied (FLUSHALL) before the test."""
    import redis

    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_server
