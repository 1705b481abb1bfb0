"""The DicomReceiver's dcmtk engine: dcmtk's ``storescp`` receives into ``.incoming``; Diana follows its log and
makes each file durable (fsync, rename into ``path/StudyUID/SOPUID.dcm``, pending mark, folder fsync).
storescp runs with unique file names, one association at a time, and dies with Diana (``setpriv --pdeathsig``).

What storescp guarantees (dcmtk 3.6.7 source, storescp.cc): the file is written and closed (``saveFile``) before the
C-STORE response is sent, never fsynced; ``--exec-on-reception`` runs only after the response. So "success" means
"in the page cache": it survives a kill of storescp or of Diana, not a power loss before Diana's fsync (typically
well under a second later). A restart replays storescp's log of the previous run: files it finished are adopted,
the one it may have been writing when killed only if it is complete, the rest (never answered) removed.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from diana_core.errors import EndpointUnavailable
from diana_dimse.engine import DCMTK_ENV, dcmtk_tool

logger = logging.getLogger(__name__)

LOG_NAME = ".storescp.log"
# storescp's INFO+ lines (each request, each file, association ends), the association request's parameters (the
# AE titles) and dcmnet's "Association Received: ADDRESS": ~100 bytes per instance, the request's contexts per
# association; the log starts afresh at each start (after the previous one was replayed)
LOG_CONFIG = """log4cplus.rootLogger = OFF
log4cplus.logger.dcmtk.apps.storescp = DEBUG, file
log4cplus.logger.dcmtk.dcmnet = DEBUG, file
log4cplus.appender.file = log4cplus::FileAppender
log4cplus.appender.file.File = {log}
log4cplus.appender.file.Append = true
log4cplus.appender.file.ImmediateFlush = true
log4cplus.appender.file.layout = log4cplus::PatternLayout
log4cplus.appender.file.layout.ConversionPattern = %m%n
log4cplus.appender.file.filters.1 = log4cplus::spi::StringMatchFilter
log4cplus.appender.file.filters.1.StringToMatch = BEGIN A-ASSOCIATE-RQ
log4cplus.appender.file.filters.1.AcceptOnMatch = true
log4cplus.appender.file.filters.2 = log4cplus::spi::StringMatchFilter
log4cplus.appender.file.filters.2.StringToMatch = Association Received:
log4cplus.appender.file.filters.2.AcceptOnMatch = true
log4cplus.appender.file.filters.3 = log4cplus::spi::LogLevelRangeFilter
log4cplus.appender.file.filters.3.LogLevelMin = INFO
log4cplus.appender.file.filters.3.LogLevelMax = FATAL
log4cplus.appender.file.filters.3.AcceptOnMatch = true
"""
FAILED = ("cannot write DICOM file", "bad DICOM file", "Store SCP Failed")
BATCH = 64  # finished files handed over at once at most
Finished = tuple[str, str, dict[str, str]]  # (path, a label from its name, association facts)
OnFiles = Callable[[list[tuple[str, Path, dict[str, str]]]], int]


class LogFollower:
    """storescp's log, line by line: a file is finished (and answered) once storescp logs anything after its
    "storing DICOM file" line other than a failure or the overwrite warning (saveFile logs nothing)."""

    def __init__(self) -> None:
        self.facts: dict[str, str] = {}
        self.pending: Finished | None = None
        self.open = 0
        self.peak = 0

    def feed(self, line: str) -> Finished | None:
        """The (path, SOP UID, association facts) this line shows finished, if any."""
        text = line.strip()
        done = None
        if self.pending is not None and not text.startswith("DICOM file already exists"):
            done, self.pending = (None if text.startswith(FAILED) else self.pending), None
        if text.startswith("Association Received: "):
            self.facts = {"PeerAddress": text.split(": ", 1)[1].strip()}
        elif text.startswith("Calling Application Name:"):
            self.facts["CallingAET"] = text.split(":", 1)[1].strip()
        elif text.startswith("Called Application Name:"):
            self.facts["CalledAET"] = text.split(":", 1)[1].strip()
        elif text.startswith("storing DICOM file: "):
            path = text.split(": ", 1)[1]
            name = os.path.basename(path)  # MODALITY.X.UNIQUE.dcm: the receiver reads the SOP UID from the file
            self.pending = (path, name.split(".", 1)[-1].removesuffix(".dcm"), {k: v for k, v in self.facts.items()
                                                                                 if v})
        elif text == "Association Acknowledged" or text.startswith("Association Acknowledged "):
            self.open += 1
            self.peak = max(self.peak, self.open)
        elif text.startswith(("Association Release", "Association Aborted")):
            self.open = max(0, self.open - 1)
        return done


def complete_on_disk(path: str | os.PathLike[str]) -> bool:
    """True when a DICOM file storescp may have been writing at a kill reads whole: no element is cut short,
    and an image has its pixel data (a cut exactly at an element boundary elsewhere cannot be told)."""
    from pydicom import dcmread
    from pydicom.dataelem import RawDataElement

    try:
        ds = dcmread(path)
        for tag in list(ds.keys()):
            raw = ds.get_item(tag)
            if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF and raw.value is not None \
                    and len(raw.value) != raw.length:
                return False
        return "Rows" not in ds or any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    except Exception:  # noqa: BLE001 - unreadable means incomplete
        return False


class DcmtkStoreServer:
    """storescp on ``port`` as ``ae_title`` writing into ``incoming``; ``on_files([(sop_uid, path, facts)])`` gets
    finished files in arrival order, moves them away and says how many it took. One association at a time."""

    def __init__(self, ae_title: str, port: int, incoming: str | os.PathLike[str], on_files: OnFiles, *,
                 timeout: float = 30.0, max_pdu: int = 0, name: str = "storescp") -> None:
        self.ae_title, self.port, self.on_files, self.name = ae_title, port, on_files, name
        self.incoming = Path(incoming).resolve()
        self.timeout, self.max_pdu = timeout, max_pdu
        self.received = 0
        self.caught_up = 0  # finished files of a previous run adopted at start
        self._follower = LogFollower()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # spawning vs stopping

    @property
    def running(self) -> bool:
        return self._proc is not None

    @property
    def peak_associations(self) -> int:
        return self._follower.peak

    def start(self) -> DcmtkStoreServer:
        """Adopt what a previous run left, start storescp, return once it listens (EndpointUnavailable if not)."""
        if self._proc is not None:
            return self
        if dcmtk_tool("storescp") is None:
            raise EndpointUnavailable(f"{self.name}: engine dcmtk: storescp not found (apt-get install dcmtk)")
        self.incoming.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            with socket.socket() as sock:
                sock.bind(("", 0))
                self.port = int(sock.getsockname()[1])
        else:
            self._wait_port_free()
        self._stop.clear()
        spawned, failed = threading.Event(), list[BaseException]()
        self._thread = threading.Thread(target=self._run, args=(spawned, failed), name=f"{self.name} storescp",
                                        daemon=True)
        self._thread.start()
        spawned.wait()
        if failed:
            self._thread.join()
            self._thread = None
            raise failed[0]
        self._wait_listening()
        logger.info("%s: listening on port %d as %r (dcmtk storescp)", self.name, self.port, self.ae_title)
        return self

    def _spawn(self) -> None:
        """Start storescp with a fresh log (the previous one was replayed by ``_catch_up``)."""
        log, config = self.incoming / LOG_NAME, self.incoming / ".storescp-log.cfg"
        config.write_text(LOG_CONFIG.format(log=log))
        log.touch()
        timeout = str(max(1, int(self.timeout)))
        pdu = str(min(max(self.max_pdu or 131072, 4096), 131072))
        # dies with us (PR_SET_PDEATHSIG): a kill -9 of Diana must not leave storescp answering success alone
        wrap = ["/usr/bin/setpriv", "--pdeathsig", "KILL"] if os.path.exists("/usr/bin/setpriv") else []
        # unique file names (+uf): an instance sent again must not overwrite the file Diana is taking in
        cmd = [*wrap, str(dcmtk_tool("storescp")), "-lc", str(config), "-dhl", "-aet", self.ae_title, "-od",
               str(self.incoming), "+uf", "-fe", ".dcm", "-ta", timeout, "-td", timeout, "-pdu", pdu, str(self.port)]
        with open(self.incoming / ".storescp.err", "wb") as err:  # what storescp prints outside its log
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                          env={**os.environ, **DCMTK_ENV})
        self._follower = LogFollower()

    def _wait_port_free(self, patience: float = 10.0) -> None:
        """The storescp of a run killed a moment ago may still hold the port while the kernel kills it: wait."""
        deadline = time.monotonic() + patience
        while True:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as storescp binds it
                try:
                    sock.bind(("", self.port))
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        return  # storescp reports it in one line
            self._stop.wait(0.1)  # polling until the port is free

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                err = (self.incoming / ".storescp.err").read_text(errors="replace")[-300:]
                self.stop()
                raise EndpointUnavailable(f"{self.name}: storescp cannot listen on port {self.port} as "
                                          f"{self.ae_title!r}: {err.strip() or 'it exited'}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            self._stop.wait(0.02)  # polling until storescp listens
        self.stop()
        raise EndpointUnavailable(f"{self.name}: storescp did not listen on port {self.port} within 15 s")

    def stop(self) -> None:
        """Stop storescp (what it finished is still taken in from its log); safe to call twice."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._stop.set()  # after storescp's last line: the follower reads to the end, then returns
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, spawned: threading.Event, failed: list[BaseException]) -> None:
        """The server's own thread, living as long as it: it starts storescp (whose parent-death signal follows the
        thread that forked it, not the process) and follows its log."""
        try:
            with self._lock:
                self._catch_up()
                self._spawn()
        except BaseException as exc:  # noqa: BLE001 - raised again by start() in the caller's thread
            failed.append(exc)
            return
        finally:
            spawned.set()
        self._follow()

    def _follow(self) -> None:
        """Read storescp's log as it grows, handing finished files over in batches (whatever is there when the log
        runs dry, at most BATCH: one folder fsync for several files). storescp exiting on its own (a crash, a
        kill) is logged, its log replayed and storescp started again."""
        while True:
            self._follow_log(self.incoming / LOG_NAME)
            if self._stop.is_set():
                return
            proc = self._proc
            logger.error("%s: storescp exited (%s); starting it again", self.name,
                         proc.returncode if proc is not None else "?")
            self._stop.wait(1.0)  # at most one restart a second
            with self._lock:
                if self._stop.is_set() or self._proc is None:
                    return
                self._catch_up()
                self._spawn()

    def _follow_log(self, log: Path) -> None:
        """Follow one storescp run's log until we stop it or it exits on its own."""
        batch: list[Finished] = []
        exited = False
        with open(log, encoding="utf-8", errors="replace") as fh:
            buf = ""
            while True:
                chunk = fh.readline()
                if chunk:
                    buf += chunk
                    if buf.endswith("\n"):
                        done = self._follower.feed(buf)
                        buf = ""
                        if done is not None:
                            batch.append(done)
                        if len(batch) < BATCH:
                            continue
                if batch:
                    self._adopt(batch)
                    batch = []
                    continue
                if self._stop.is_set():
                    return
                proc = self._proc
                if proc is not None and proc.poll() is not None:
                    if exited:
                        return  # exited on its own, and every line it wrote was read (one more pass after)
                    exited = True
                    continue
                self._stop.wait(0.01)  # polling the log: storescp appends and flushes each line

    def _adopt(self, batch: list[Finished], live: bool = True) -> int:
        """Hand finished files to ``on_files``; how many it took (the rest stay for the next start)."""
        try:
            taken = self.on_files([(sop or Path(path).stem, Path(path), facts) for path, sop, facts in batch])
        except Exception as exc:  # noqa: BLE001 - the files stay in .incoming and are taken at the next start
            logger.error("%s: cannot take %d file(s) in: %s: %s", self.name, len(batch), type(exc).__name__, exc)
            return 0
        if live:
            self.received += taken
        return taken

    def _catch_up(self) -> None:
        """Adopt the files storescp finished in a previous run (its log), remove the ones it never answered."""
        log = self.incoming / LOG_NAME
        if log.exists():
            follower = LogFollower()
            with open(log, encoding="utf-8", errors="replace") as fh:
                finished = [done for done in map(follower.feed, fh) if done is not None and os.path.exists(done[0])]
            last = follower.pending
            if last is not None and os.path.exists(last[0]) and complete_on_disk(last[0]):
                finished.append(last)
            for start in range(0, len(finished), BATCH):
                self.caught_up += self._adopt(finished[start:start + BATCH], live=False)
        for left in _files(self.incoming):
            logger.warning("%s: removing %s: storescp never answered it (the sender sends it again)", self.name,
                           left.name)
            left.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        if self.caught_up:
            logger.info("%s: %d instance(s) received before a stop taken from storescp's log", self.name,
                        self.caught_up)


def _files(folder: Path) -> Iterable[Path]:
    return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]


def take_in(where: str, sink: Any, batch: list[tuple[str, Path, dict[str, str]]], read_header: Callable[..., Any],
            announce: Callable[[str, str, dict[str, str], dict[str, str]], Any]) -> int:
    """The receiver's side: read each file's keys, make the batch durable in ``sink`` (``FolderSink.adopt_many``),
    announce each; how many were taken (a file that cannot be read stays for the next start)."""
    ready = []
    for sop_uid, src, association in batch:
        try:
            keys = _keys(src, read_header)
        except FileNotFoundError:
            continue  # storescp removed it: its response failed
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the others
            logger.error("%s: cannot read %s: %s", where, src.name, type(exc).__name__)
            continue
        ready.append((keys.pop("SOPInstanceUID", "") or sop_uid, keys, src, association))
    paths = sink.adopt_many([(sop_uid, keys, src) for sop_uid, keys, src, _ in ready])
    for (sop_uid, keys, _, association), path in zip(ready, paths, strict=True):
        announce(str(path), sop_uid, keys, association)
    return len(ready)


WANTED = {0x00080018: "SOPInstanceUID", 0x00100020: "PatientID", 0x0020000D: "StudyInstanceUID",
          0x0020000E: "SeriesInstanceUID"}
HEAD_BYTES = 16384  # where the wanted keys are in any ordinary header (~3 KB into a CT; else pydicom reads it)


def _keys(src: Path, read_header: Callable[..., Any]) -> dict[str, str]:
    """The non-empty wanted keys of a file storescp wrote: from its first bytes (``rawkeys``), else by pydicom."""
    from diana_dimse.rawkeys import text_keys

    with open(src, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    found = text_keys(head, WANTED, whole=len(head) < HEAD_BYTES)
    if found is not None:
        return {WANTED[tag]: value for tag, value in found.items() if value}
    from diana_dimse.files import read_keys

    ds = read_keys(os.fspath(src), WANTED.values(), read_header)
    return {k: str(ds.get(k)) for k in WANTED.values() if ds.get(k)}
