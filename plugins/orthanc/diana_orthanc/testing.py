"""Real Orthanc processes for tests and benchmarks (pytest fixtures, loaded by the repo's conftest).

``start_orthanc(...)`` runs ``/usr/sbin/Orthanc`` on free loopback ports with its own storage, authentication on and
per-run credentials, polls ``/system`` until it answers, and returns an ``OrthancServer`` whose ``stop()`` sends
SIGTERM and waits. ``start_orthanc_pair`` starts "local" (AET LOCAL) and "remote" (AET REMOTE), each declared to the
other as DICOM modality and Orthanc peer, so C-ECHO/C-FIND/C-MOVE really cross DICOM between them.
Fixtures: ``orthanc_pair``, ``orthanc_local``, ``orthanc_remote`` (session), ``clean_orthancs`` (function),
``dicom_testfiles`` (session).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field

from diana_core.processes import stop_process

ORTHANC_BIN_CANDIDATES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc", "/usr/local/bin/Orthanc")
INSTALL_HINT = "Orthanc not found: install it with `apt-get install orthanc` (Debian/Ubuntu) or set $ORTHANC_BIN"

# pydicom test files Orthanc stores (distinct SOP instances; all present offline in pydicom's wheel)
TESTFILE_NAMES = (
    "CT_small.dcm", "MR_small.dcm", "JPEG-lossy.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose_1frame.dcm",
    "SC_rgb_rle.dcm", "test-SR.dcm", "liver_1frame.dcm", "image_dfl.dcm",
)


class OrthancStartError(RuntimeError):
    """Orthanc could not be started (missing binary, port taken, bad config)."""


def orthanc_binary() -> str:
    """Path of the Orthanc executable, or OrthancStartError with the install hint."""
    env = os.environ.get("ORTHANC_BIN")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise OrthancStartError(f"$ORTHANC_BIN={env!r} is not an executable. {INSTALL_HINT}")
    for cand in (shutil.which("Orthanc") or "", *ORTHANC_BIN_CANDIDATES):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise OrthancStartError(INSTALL_HINT)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_credentials() -> tuple[str, str]:
    """A random (user, password) pair for one test run."""
    return f"diana-{secrets.token_hex(3)}", secrets.token_urlsafe(18)


@define
class OrthancServer:
    """A running Orthanc process and how to reach it."""

    name: str
    aet: str
    host: str
    http_port: int
    dicom_port: int
    user: str
    password: str = field(repr=False)
    storage: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def service_desc(self, **extra: Any) -> dict[str, Any]:
        """A Diana service entry for this server (ctype Orthanc unless overridden)."""
        desc = {"ctype": "Orthanc", "host": self.host, "port": self.http_port, "user": self.user,
                "password": self.password, "aet": self.aet}
        desc.update(extra)
        return desc

    def _session(self) -> Any:
        import requests

        sess = requests.Session()
        sess.auth = (self.user, self.password)
        return sess

    def reset(self) -> None:
        """Delete every patient over REST (``/tools/reset`` only reloads config, it does not wipe)."""
        if self.proc is not None and self.proc.poll() is not None:
            log = self.storage.parent / f"{self.name}.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
            raise OrthancStartError(f"Orthanc {self.name!r} exited with {self.proc.returncode}; log tail:\n{tail}")
        import requests

        with self._session() as sess:
            deadline = time.monotonic() + 20
            while True:  # a test may have called /tools/reset: Orthanc restarts and refuses briefly
                try:
                    sess.get(f"{self.url}/system", timeout=5).raise_for_status()
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            for pid in sess.get(f"{self.url}/patients", timeout=30).json():
                sess.delete(f"{self.url}/patients/{pid}", timeout=30).raise_for_status()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then wait for the process (kill after ``timeout``); safe to call twice."""
        stop_process(self.proc, timeout)
        self.proc = None


def _config(name: str, aet: str, storage: Path, http_port: int, dicom_port: int, user: str, password: str,
            modalities: Mapping[str, Any], peers: Mapping[str, Any], stable_age: int,
            extra: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = {
        "Name": name, "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": aet, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {user: password},
        "DicomModalities": {k: list(v) for k, v in modalities.items()},
        "OrthancPeers": dict(peers), "DicomCheckCalledAet": False, "Plugins": [], "StableAge": stable_age,
        "SaveJobs": False, "ConcurrentJobs": 2, "HttpThreadsCount": 16, "StorageCompression": False,
    }
    cfg.update(extra or {})
    return cfg


def _wait_ready(server: OrthancServer, log: Path, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    with server._session() as sess:
        while time.monotonic() < deadline:
            if server.proc is not None and server.proc.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise OrthancStartError(f"Orthanc {server.name!r} exited with {server.proc.returncode}:\n{tail}")
            try:
                if sess.get(f"{server.url}/system", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)  # polling interval, not a wait for a condition we could observe otherwise
    server.stop()
    raise OrthancStartError(f"Orthanc {server.name!r} did not answer /system within {timeout} s")


def start_orthanc(
    tmpdir: str | os.PathLike[str],
    name: str = "orthanc",
    aet: str = "ORTHANC",
    modalities: Mapping[str, Any] | None = None,
    peers: Mapping[str, Any] | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
    http_port: int | None = None,
    dicom_port: int | None = None,
    stable_age: int = 1,
    extra_config: Mapping[str, Any] | None = None,
    timeout: float = 20.0,
) -> OrthancServer:
    """Start one Orthanc; ``modalities`` = {name: (AET, host, port)}, ``peers`` = {name: {Url, Username, Password}}."""
    binary = orthanc_binary()
    if user is None or password is None:
        user, password = new_credentials()
    http_port = http_port or free_port()
    dicom_port = dicom_port or free_port()
    storage = Path(tmpdir) / f"{name}-db"
    storage.mkdir(parents=True, exist_ok=True)
    cfg = _config(name, aet, storage, http_port, dicom_port, user, password, modalities or {}, peers or {},
                  stable_age, extra_config)
    cfg_path = Path(tmpdir) / f"{name}.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    cfg_path.chmod(0o600)
    log = Path(tmpdir) / f"{name}.log"
    env = {**os.environ, "TCP_NODELAY": "1"}
    with open(log, "ab") as logf:
        proc = subprocess.Popen([binary, str(cfg_path)], stdout=logf, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    server = OrthancServer(name=name, aet=aet, host="127.0.0.1", http_port=http_port, dicom_port=dicom_port,
                           user=user, password=password, storage=storage, proc=proc)
    _wait_ready(server, log, timeout)
    return server


@define
class OrthancPair:
    """The "local" Orthanc and the "remote PACS" it reaches as modality "remote" / peer "remote"."""

    local: OrthancServer
    remote: OrthancServer

    def stop(self) -> None:
        for srv in (self.local, self.remote):
            if srv.proc is not None and srv.proc.poll() is None:
                srv.proc.terminate()  # terminate both first: each takes 1-3 s to exit
        self.local.stop()
        self.remote.stop()

    def reset(self) -> None:
        self.local.reset()
        self.remote.reset()


def start_orthanc_pair(tmpdir: str | os.PathLike[str], user: str | None = None, password: str | None = None,
                       stable_age: int = 1, attempts: int = 3) -> OrthancPair:
    """Start "local" (AET LOCAL) and "remote" (AET REMOTE), each declared to the other; retries on port races."""
    if user is None or password is None:
        user, password = new_credentials()
    last: Exception | None = None
    for attempt in range(attempts):
        ports = [free_port() for _ in range(4)]
        if len(set(ports)) < 4:
            continue
        lh, ld, rh, rd = ports
        base = Path(tmpdir) / f"pair{attempt}"

        def peer(port: int) -> dict[str, str]:
            return {"Url": f"http://127.0.0.1:{port}/", "Username": user, "Password": password}

        local = remote = None
        try:
            remote = start_orthanc(base, "remote", "REMOTE", {"local": ("LOCAL", "127.0.0.1", ld)},
                                   {"local": peer(lh)}, user=user, password=password, http_port=rh,
                                   dicom_port=rd, stable_age=stable_age)
            local = start_orthanc(base, "local", "LOCAL", {"remote": ("REMOTE", "127.0.0.1", rd)},
                                  {"remote": peer(rh)}, user=user, password=password, http_port=lh,
                                  dicom_port=ld, stable_age=stable_age)
            return OrthancPair(local=local, remote=remote)
        except OrthancStartError as exc:
            if "not found" in str(exc):
                raise
            last = exc
            for srv in (local, remote):
                if srv is not None:
                    srv.stop()
    raise OrthancStartError(f"could not start the Orthanc pair after {attempts} attempts: {last}")


# --- pytest fixtures -------------------------------------------------------------------------------


@contextlib.contextmanager
def orthanc_workdir(prefix: str = "diana-orthanc-") -> Iterator[Path]:
    """A private temp dir, removed afterwards.

    Not pytest's numbered tmp dirs: a concurrent pytest run prunes those, deleting a live Orthanc's storage.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def orthanc_pair() -> Iterator[OrthancPair]:
    """Two real Orthancs (local/LOCAL and remote/REMOTE) for the whole session."""
    with orthanc_workdir() as workdir:
        pair = start_orthanc_pair(workdir)
        try:
            yield pair
        finally:
            pair.stop()


@pytest.fixture(scope="session")
def orthanc_local(orthanc_pair: OrthancPair) -> OrthancServer:
    """The "local" Orthanc of the pair (AET LOCAL, modality/peer "remote")."""
    return orthanc_pair.local


@pytest.fixture(scope="session")
def orthanc_remote(orthanc_pair: OrthancPair) -> OrthancServer:
    """The "remote PACS" Orthanc of the pair (AET REMOTE, modality/peer "local")."""
    return orthanc_pair.remote


@pytest.fixture
def clean_orthancs(orthanc_pair: OrthancPair) -> Iterator[OrthancPair]:
    """The pair, emptied before the test."""
    orthanc_pair.reset()
    yield orthanc_pair


def testfile_paths(names: tuple[str, ...] = TESTFILE_NAMES) -> list[str]:
    """Paths of pydicom's bundled test files (those on disk; nothing is downloaded)."""
    from pydicom.data import get_testdata_file

    paths = []
    for name in names:
        path = get_testdata_file(name, download=False)
        if path is not None:
            paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def dicom_testfiles() -> list[str]:
    """Small real-world DICOM files (pydicom's corpus) that Orthanc accepts, each a distinct instance."""
    paths = testfile_paths()
    assert paths, "pydicom's test files are missing: reinstall pydicom"
    return paths
