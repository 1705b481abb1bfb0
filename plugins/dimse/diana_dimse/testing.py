"""Real DICOM software for tests and benchmarks: dcmtk's ``dcmqrscp`` as a query/retrieve PACS and dcmtk's
command-line clients (storescu, findscu, movescu, storescp), all started with TCP_NODELAY=1.

``start_dcmqrscp(workdir, hosts={...})`` writes a config (HostTable = the C-MOVE destinations it may send to),
starts the server on a free port, waits until it accepts connections, and returns a ``QRServer`` (``stop()`` kills
it by PID). Fixture ``dimse_pacs`` (session): a dcmqrscp "PACS" loaded with two small CT studies, which knows
our C-MOVE receiver "DIANA" and a dcmtk ``storescp`` "STORESCP" as destinations.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field

from diana_core.processes import stop_process

INSTALL_HINT = "dcmtk not found: install it with `apt-get install dcmtk`"
DCMTK_ENV = {"TCP_NODELAY": "1"}


class DcmtkError(RuntimeError):
    """A dcmtk tool is missing, failed, or a server did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    """dcmtk's tool by absolute path (/usr/bin): pynetdicom installs Python scripts named storescu/storescp into
    a venv, which PATH would find first."""
    from diana_dimse.engine import dcmtk_tool

    path = dcmtk_tool(name)
    if path is None:
        raise DcmtkError(f"{name}: {INSTALL_HINT}")
    return path


def run_dcmtk(name: str, *args: Any, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess:
    """Run a dcmtk tool (TCP_NODELAY=1 in its environment); DcmtkError with its stderr tail when it fails."""
    proc = subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **DCMTK_ENV}, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise DcmtkError(f"{name} exited {proc.returncode}: {proc.stderr[-800:]}")
    return proc


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    """Poll until something accepts TCP connections on 127.0.0.1:port (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DcmtkError(f"server exited with {proc.returncode} before listening on port {port}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)  # polling interval
    raise DcmtkError(f"nothing listens on port {port} after {timeout} s")


@define
class Background:
    """A server process started by us; ``stop()`` terminates it by PID and waits."""

    proc: subprocess.Popen | None = field(repr=False)
    port: int
    aet: str

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self.proc = None


@define
class QRServer(Background):
    """A running dcmqrscp: AE title, port, database folder."""

    db: Path = Path()
    config: Path = Path()


def dcmqrscp_config(port: int, aet: str, db: Path, hosts: Mapping[str, tuple[str, str, int]],
                    max_pdu: int = 16384) -> str:
    """dcmqrscp.cfg text: our AE ``aet`` storing in ``db`` (any caller), ``hosts`` = {name: (AET, host, port)}
    being the C-MOVE destinations it knows."""
    host_lines = "\n".join(f"{name} = ({a}, {h}, {p})" for name, (a, h, p) in hosts.items())
    return (f"NetworkTCPPort  = {port}\nMaxPDUSize      = {max_pdu}\nMaxAssociations = 16\n\n"
            f"HostTable BEGIN\n{host_lines}\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
            f"AETable BEGIN\n{aet}  {db.resolve()}  RW  (2000, 4096mb)  ANY\nAETable END\n")


def start_dcmqrscp(workdir: str | os.PathLike[str], aet: str = "PACS",
                   hosts: Mapping[str, tuple[str, str, int]] | None = None, port: int | None = None,
                   extra_args: Sequence[str] = ()) -> QRServer:
    """Start dcmqrscp with its own database under ``workdir``; returns once it accepts connections."""
    work = Path(workdir)
    db = (work / f"{aet.lower()}-db").resolve()
    db.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    cfg = work / f"{aet.lower()}.cfg"
    cfg.write_text(dcmqrscp_config(port, aet, db, hosts or {}))
    log = open(work / f"{aet.lower()}.log", "ab")  # noqa: SIM115 - owned by the process
    try:
        proc = subprocess.Popen([tool("dcmqrscp"), *extra_args, "-c", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **DCMTK_ENV}, cwd=work)
    finally:
        log.close()
    server = QRServer(proc=proc, port=port, aet=aet, db=db, config=cfg)
    try:
        wait_port(port, proc)
    except DcmtkError:
        server.stop()
        raise
    return server


def start_storescp(folder: str | os.PathLike[str], aet: str = "STORESCP", port: int | None = None,
                   extra_args: Sequence[str] = ()) -> Background:
    """dcmtk's storescp writing what it receives into ``folder`` (accepting every transfer syntax)."""
    port = port or free_port()
    Path(folder).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([tool("storescp"), "-aet", aet, "+xa", "-od", str(folder), *extra_args, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env={**os.environ, **DCMTK_ENV})
    server = Background(proc=proc, port=port, aet=aet)
    try:
        wait_port(port, proc)
    except DcmtkError:
        server.stop()
        raise
    return server


def storescu(port: int, paths: Sequence[str | os.PathLike[str]], aec: str = "ANY-SCP", aet: str = "STORESCU",
             extra_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Send files/folders with dcmtk's storescu (+sd +r: scan folders recursively)."""
    return run_dcmtk("storescu", "-aet", aet, "-aec", aec, "+sd", "+r", *extra_args, "127.0.0.1", port, *paths)


def findscu_study_uids(port: int, aec: str, keys: Mapping[str, str], level: str = "STUDY") -> list[str]:
    """StudyInstanceUIDs findscu reports for a study-root query (answers are printed on stderr)."""
    args: list[Any] = ["-S", "-aec", aec, "-k", f"QueryRetrieveLevel={level}", "-k", "StudyInstanceUID"]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}"]
    proc = run_dcmtk("findscu", *args, "127.0.0.1", port)
    uids = []
    for line in (proc.stderr + proc.stdout).splitlines():
        if "(0020,000d)" in line and "[" in line:
            uids.append(line.split("[", 1)[1].split("]", 1)[0].strip().rstrip("\x00"))
    return [u for u in uids if u]


def write_studies(folder: str | os.PathLike[str], studies: int = 2, series: int = 2, per_series: int = 3,
                  size: int = 8, run: str = "diana-dimse") -> list[Path]:
    """Synthetic CT studies (valid DICOM, deterministic UIDs, accession numbers ACC0000000k) as files."""
    from diana_dimse.testdata import write_ct_study

    paths: list[Path] = []
    for s in range(studies):
        paths += write_ct_study(Path(folder) / f"study{s}", s, series=series, per_series=per_series, size=size,
                                run=run)
    return paths


@define
class DimseLab:
    """The session's dcmqrscp PACS, its studies, and the ports of the destinations it knows."""

    pacs: QRServer
    files: list[Path]
    receive_port: int  # our DicomNode's C-MOVE receiver, known to the PACS as DIANA
    storescp_port: int  # a dcmtk storescp, known to the PACS as STORESCP
    workdir: Path

    def node_desc(self, **extra: Any) -> dict[str, Any]:
        """A service entry for a DicomNode that talks to the PACS and receives its C-MOVEs."""
        desc = {"ctype": "DicomNode", "host": "127.0.0.1", "port": self.pacs.port, "aet": self.pacs.aet,
                "calling_aet": "DIANA", "receive_port": self.receive_port, "timeout": 20}
        desc.update(extra)
        return desc


@pytest.fixture(scope="session")
def dimse_pacs() -> Iterator[DimseLab]:
    """dcmqrscp "PACS" with two synthetic CT studies (ACC00000000, ACC00000001; 2 series x 3 instances each)."""
    work = Path(tempfile.mkdtemp(prefix="diana-dimse-"))
    receive_port, storescp_port = free_port(), free_port()
    pacs = start_dcmqrscp(work, "PACS", hosts={"diana": ("DIANA", "127.0.0.1", receive_port),
                                               "storescp": ("STORESCP", "127.0.0.1", storescp_port)})
    try:
        files = write_studies(work / "src")
        storescu(pacs.port, [work / "src"], aec="PACS")
        yield DimseLab(pacs=pacs, files=files, receive_port=receive_port, storescp_port=storescp_port, workdir=work)
    finally:
        pacs.stop()
        shutil.rmtree(work, ignore_errors=True)
