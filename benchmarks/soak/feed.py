"""The mock site feeding the soak: modalities sending with /usr/bin/storescu to the DICOM receiver, a folder drop,
and a CT scanner sending a 2,000-image study in one association (a burst) now and then.

Instances are the mock site's small-pixel images (64x64, ~10 KB each) so 30 minutes stay within a few GB of disk.
A send that fails (the receiver is inside the watcher, which the chaos loop kills) is sent again in full, as a
modality does: instances the receiver had already stored arrive twice, and the ledger must keep them from being
delivered twice.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from diana_core.dicom.orthanc_ids import orthanc_id
from diana_mock.dixels import MockSeries, MockStudy, reset_mock_seed

SMALL = ("CT", "MR", "CR", "US")


class Expected:
    """Every instance the site handed over: Orthanc id -> (route, the file whose mtime starts its latency clock)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()
        self.sent = {"modality": 0, "burst": 0, "folder": 0}
        self.resends = 0

    def add(self, kind: str, entries: list[tuple[str, str]]) -> None:
        with self.lock:
            for oid, start in entries:
                self.items[oid] = (kind, start)
            self.sent[kind] += len(entries)

    def total(self) -> int:
        with self.lock:
            return len(self.items)


def _write_study(study: MockStudy, folder: Path, inbox: Path | None) -> list[tuple[str, str]]:
    """Write the study's instances into ``folder`` (``.name`` first, then renamed: a folder source sees whole files
    only); (Orthanc id, latency start file) for each: the receiver's stored copy, or the dropped file itself."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for inst in study.instances():
        tags = inst.all_tags()
        oid = orthanc_id(str(tags["PatientID"]), str(tags["StudyInstanceUID"]), str(tags["SeriesInstanceUID"]),
                         str(tags["SOPInstanceUID"]))
        final = folder / f"{oid}.dcm"
        tmp = folder / f".{oid}.dcm"
        inst.gen_file(tmp)
        os.replace(tmp, final)
        start = inbox / str(tags["StudyInstanceUID"]) / f"{tags['SOPInstanceUID']}.dcm" if inbox else final
        out.append((oid, str(start)))
    return out


class Site:
    """Three senders on their own threads until ``stop``: steady modalities, the folder drop, the CT bursts."""

    def __init__(self, work: Path, receiver_port: int, seed: str, steady_every: float = 3.0,
                 burst_every: tuple[float, float] = (360.0, 600.0), burst_size: int = 2000,
                 first_burst: float = 150.0) -> None:
        self.work, self.port = work, receiver_port
        self.stage, self.dropbox, self.inbox = work / "stage", work / "dropbox", work / "inbox"
        self.steady_every, self.burst_every, self.burst_size = steady_every, burst_every, burst_size
        self.first_burst = first_burst
        self.expected = Expected()
        self.rng = random.Random(seed)
        self.bursts: list[tuple[float, float]] = []  # (start, end) monotonic of each burst sent
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mock_lock = threading.Lock()  # the mock module's counters are shared by the three senders
        reset_mock_seed(seed)
        self._n = 0

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        for target in (self._modalities, self._folder, self._bursts):
            thread = threading.Thread(target=target, name=target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 600) -> None:
        """Stop sending; a send in progress (a burst too) is finished first, so every expected instance arrived."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    # --- senders -----------------------------------------------------------------------------------------------
    def _study(self, modality: str, cap: int) -> MockStudy:
        with self._mock_lock:
            return MockStudy(modality=modality, max_instances_per_series=cap)

    def _batch(self) -> Path:
        with self._mock_lock:
            self._n += 1
            return self.stage / f"b{self._n:06d}"

    def _storescu(self, folder: Path, kind: str, entries: list[tuple[str, str]]) -> None:
        """Send the folder until storescu succeeds (a modality re-sends what failed), then forget the copy."""
        env = {**os.environ, "TCP_NODELAY": "1"}
        while True:
            done = subprocess.run(["/usr/bin/storescu", "-aec", "DIANA", "-aet", kind.upper()[:16], "+sd", "+r",
                                   "-to", "30", "-ta", "30", "-td", "60", "127.0.0.1", str(self.port), str(folder)],
                                  capture_output=True, env=env, check=False)
            if done.returncode == 0 and b"E:" not in done.stderr:
                break
            self.expected.resends += 1
            time.sleep(2.0)  # the receiver restarts: try again as a modality's queue would
        self.expected.add(kind, entries)
        shutil.rmtree(folder, ignore_errors=True)

    def _modalities(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            study = self._study(self.rng.choice(SMALL), cap=3)
            folder = self._batch()
            entries = _write_study(study, folder, self.inbox)
            self._storescu(folder, "modality", entries)
            self._stop.wait(max(0.0, self.steady_every - (time.monotonic() - began)))

    def _folder(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            study = self._study(self.rng.choice(SMALL), cap=3)
            uid = str(study.tag("StudyInstanceUID"))
            entries = _write_study(study, self.dropbox / uid, None)
            self.expected.add("folder", entries)
            self._stop.wait(max(0.0, self.steady_every - (time.monotonic() - began)))

    def _bursts(self) -> None:
        wait = self.first_burst
        while not self._stop.wait(wait):
            began = time.monotonic()
            with self._mock_lock:
                study = MockStudy(modality="CT", max_instances_per_series=1)
                study.children = [MockSeries(parent=study, ser_num=2, ser_desc="AXIAL 0.625 mm",
                                             n_instances=self.burst_size)]
            folder = self._batch()
            entries = _write_study(study, folder, self.inbox)
            sent_from = time.monotonic()
            self._storescu(folder, "burst", entries)
            self.bursts.append((sent_from, time.monotonic()))
            wait = max(0.0, self.rng.uniform(*self.burst_every) - (time.monotonic() - began))

    def summary(self) -> dict[str, Any]:
        return {"sent": dict(self.expected.sent), "distinct": self.expected.total(),
                "resends": self.expected.resends, "bursts": len(self.bursts)}
