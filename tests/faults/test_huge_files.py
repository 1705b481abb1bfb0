"""Bounded reads (#24): a 2 GiB file (all zeros; or "DICM" then zeros; sparse, made with truncate) dropped into a
watched folder is refused in seconds, without reading it into memory, and never delays a good file dropped after
it; `diana put` of it alone fails fast with a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pydicom

from diana_orthanc.testdata import ct_bytes
from tests.faults.helpers import DIANA, ENV, kill9, wait_for

TWO_GIB = 2 << 30


def sparse(path: Path, head: bytes = b"") -> Path:
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(TWO_GIB)
    return path


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_two_gib_files_are_refused_fast_and_a_good_file_after_them_is_routed(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"inbox": {"ctype": "ObservableDcmDir", "path": str(inbox)},
                                    "archive": {"ctype": "DcmDir", "path": str(out)}}))
    letters = tmp_path / "dead.jsonl"
    proc = subprocess.Popen([*DIANA, "-s", str(services), "watch", "-r", "upload_item", "inbox", "archive",
                             "--interval", "0.05", "--deadletter", str(letters)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**ENV, "XDG_STATE_HOME": str(tmp_path / "s")})
    try:
        wait_for(lambda: list((tmp_path / "s").rglob("*.json")), what="the watcher started")
        started = time.monotonic()
        sparse(inbox / "zeros.dcm")
        head = bytes(128) + b"DICM"
        sparse(inbox / "dicm-then-zeros.dcm", head)
        (inbox / "good.dcm").write_bytes(ct_bytes(1, run="huge"))
        wait_for(lambda: out.exists() and any(p.is_file() for p in out.rglob("*")), timeout=30,
                 what="the good file routed")
        routed_after = time.monotonic() - started
        wait_for(lambda: letters.exists() and len(letters.read_text().splitlines()) == 2, timeout=30,
                 what="both huge files dead-lettered")
        refused_after = time.monotonic() - started
        peak = peak_rss_mb(proc.pid)
    finally:
        kill9(proc)
    assert routed_after < 10 and refused_after < 10, (routed_after, refused_after)
    assert peak < 400, f"the daemon peaked at {peak:.0f} MB: a huge file was read into memory"
    [good] = [p for p in out.rglob("*") if p.is_file()]
    assert pydicom.dcmread(good).SOPInstanceUID == pydicom.dcmread(inbox / "good.dcm").SOPInstanceUID
    records = [json.loads(line) for line in letters.read_text().splitlines()]
    assert all(r["attempts"] == 1 and "InvalidDicom" in r["error"] for r in records)  # permanent: no retries


def test_put_of_a_two_gib_file_alone_fails_fast_in_one_line(tmp_path):
    huge = sparse(tmp_path / "zeros.dcm")
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"archive": {"ctype": "DcmDir", "path": str(tmp_path / "archive")}}))
    started = time.monotonic()
    result = subprocess.run([*DIANA, "-s", str(services), "put", "archive", str(huge)], capture_output=True,
                            text=True, timeout=60, env=ENV)
    took = time.monotonic() - started
    assert took < 10 and result.returncode == 1, (took, result.stderr[-1000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "zeros.dcm" in lines[0] and "not DICOM" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not any(p.is_file() for p in (tmp_path / "archive").rglob("*")) if (tmp_path / "archive").exists() else True
    os.unlink(huge)
