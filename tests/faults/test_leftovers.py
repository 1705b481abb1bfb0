"""What a killed `collect` leaves behind is purged on the next start: identified study archives in JOB/tmp and the
half-written `.zip.part` files of dead writers in a study-zip destination (a live writer's files are left alone)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from diana_core.services import build_endpoint
from diana_core.usecases.collector import Collector
from diana_orthanc.testdata import write_small_ct


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def identified_zip(path: Path, source: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(source, arcname="original.dcm")
    return path


def test_a_restarted_collect_purges_identified_leftovers_of_a_killed_run(tmp_path):
    pacs, research, job = tmp_path / "pacs", tmp_path / "research", tmp_path / "job"
    for n in range(3):
        write_small_ct(pacs / f"{n}.dcm", "LEFT1", n + 1, patient_id="PLEFT", patient_name="Left^Over",
                       study_uid="1.2.826.0.1.3680043.8.498.55.1")
    # what kill -9 left: the original study archive in JOB/tmp, a dead writer's part file at the destination
    (job / "tmp" / "tmpabc").mkdir(parents=True)
    identified_zip(job / "tmp" / "tmpabc" / "study.zip", pacs / "0.dcm")
    research.mkdir()
    stale = identified_zip(research / f".{dead_pid()}-x1.zip.part", pacs / "0.dcm")
    live = identified_zip(research / f".{os.getpid()}-x2.zip.part", pacs / "1.dcm")  # a writer still at work

    source = build_endpoint("DcmDir", {"path": str(pacs)}, "pacs")
    dest = build_endpoint("DcmDir", {"path": str(research), "anonymizing": True, "study_zips": True}, "research")
    result = Collector().run("left", ["LEFT1"], source, None, dest, anonymize=True, job_dir=job)

    assert result.ok and result.done == 1 and result.instances == 3, result.failed
    assert not stale.exists() and live.exists()
    assert not (job / "tmp").exists() or not any((job / "tmp").rglob("*"))
    [study_zip] = list(research.rglob("*.zip"))
    with zipfile.ZipFile(study_zip) as archive:
        assert len(archive.namelist()) == 3 and b"Left^Over" not in b"".join(archive.read(n) for n in archive.namelist())


def test_watch_removes_the_archives_a_killed_daemon_left_in_its_private_temp_folder(tmp_path):
    from diana_core.usecases.routes import purge_route_leftovers, route_tmpdir

    folder = Path(route_tmpdir())
    assert folder.stat().st_mode & 0o077 == 0
    gone = dead_pid()
    stale = identified_zip(folder / f"{gone}-route-x.zip", _one_file(tmp_path))
    (folder / f"{gone}-anon-y").mkdir()
    live = identified_zip(folder / f"{os.getpid()}-route-z.zip", _one_file(tmp_path))
    try:
        assert purge_route_leftovers() >= 2
        assert not stale.exists() and not (folder / f"{gone}-anon-y").exists() and live.exists()
    finally:
        live.unlink(missing_ok=True)


def _one_file(tmp_path: Path) -> Path:
    path = tmp_path / "one.dcm"
    write_small_ct(path, "LEFT2", 1, patient_id="PLEFT", patient_name="Left^Over")
    return path
