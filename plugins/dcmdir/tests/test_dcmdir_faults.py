"""DcmDir under storage faults, on real file systems: a read-only folder (``chattr +i``: root ignores chmod; a
ConfigError, not worth retrying) and a full disk (a 1 MiB tmpfs; EndpointUnavailable, transient). Each ends in a
one-line error naming the folder and the file, leaves no partial or temporary file, and nothing counts as stored. (A file vanishing between list and read:
test_dcmdir_conformance.) Needs root, as the tests on this machine and in CI run: mount and chattr say so if not."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from diana_core import Dixel
from diana_core.errors import ConfigError, EndpointUnavailable, is_transient
from diana_dcmdir import DcmDir
from diana_dcmdir.layout import instance_file_name


def run(*args: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"{' '.join(args)} failed (these tests need root): {proc.stderr.strip()}"


def dixel(data: bytes) -> Dixel:
    return Dixel.from_pydicom(dcmread(io.BytesIO(data)), file=data)


def file_name(item: Dixel) -> str:
    """The name DcmDir gives the item's file (its Orthanc instance id: no PHI)."""
    return instance_file_name(item.tags)


def every_file(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden temporary ones included."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def assert_one_line_naming(exc: BaseException, folder: Path, fn: str, why: str) -> None:
    text = str(exc)
    assert "\n" not in text and "'faulty'" in text and str(folder) in text and fn in text and why in text, text


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody - root included - may change (immutable), with ``chattr -i`` in the finalizer."""
    folder = tmp_path / "frozen"
    folder.mkdir()
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, timeout=30)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted in the finalizer."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)


def test_a_read_only_folder_refuses_put_and_delete_in_one_line(frozen: Path, study: dict[str, Any]) -> None:
    endpoint = DcmDir(name="faulty", path=str(frozen))
    items = [dixel(data) for data in study["files"]]
    kept = endpoint.put(items[0])
    run("chattr", "+i", str(frozen))
    with pytest.raises(ConfigError) as err:
        endpoint.put(items[1])
    assert not is_transient(err.value)
    assert_one_line_naming(err.value, frozen, f"cannot write {file_name(items[1])}", "Operation not permitted")
    assert every_file(frozen) == [kept] and not endpoint.exists(items[1])
    result = endpoint.put_many(items[1:])
    assert result.done == 0 and len(result.failed) == 2 and "cannot write" in result.failed[0][1]
    assert endpoint.count_instances(items[0], level="studies") == 1  # the one file stored before, nothing else
    with pytest.raises(ConfigError) as err:
        endpoint.delete(kept)
    assert_one_line_naming(err.value, frozen, kept, "Operation not permitted")
    assert every_file(frozen) == [kept] and endpoint.exists(kept)
    assert [d.tag("SOPInstanceUID") for d in endpoint.find({})] == [items[0].tag("SOPInstanceUID")]


def test_a_full_disk_refuses_put_leaving_no_partial_file(tiny_disk: Path, make_dicom: Callable[..., bytes],
                                                          study: dict[str, Any]) -> None:
    endpoint = DcmDir(name="faulty", path=str(tiny_disk / "folder"))
    big = dixel(make_dicom(study["study_uid"], study["series"][0], f"{study['sops'][0]}.9", rows=800))  # 1.3 MB
    with pytest.raises(EndpointUnavailable) as err:
        endpoint.put(big)
    assert is_transient(err.value)
    assert_one_line_naming(err.value, tiny_disk / "folder", f"cannot write {file_name(big)}", "No space left on device")
    assert every_file(tiny_disk) == [] and not endpoint.exists(big)  # the temp file went with the failure
    assert endpoint.count_instances(big, level="studies") == 0
    small = dixel(study["files"][0])
    assert endpoint.put(small) and endpoint.exists(small)  # the space the failed write took was given back
    assert [d.tag("SOPInstanceUID") for d in endpoint.find({})] == [small.tag("SOPInstanceUID")]
    assert os.statvfs(tiny_disk).f_bfree > 0


def test_diana_put_onto_a_full_disk_reports_the_file_in_one_line_and_counts_the_rest(
        tiny_disk: Path, tmp_path: Path, make_dicom: Callable[..., bytes], study: dict[str, Any]) -> None:
    """The command line, as a user meets it: one failure line naming the file, the others stored and counted, exit
    status 1, no traceback."""
    small, big = tmp_path / "small.dcm", tmp_path / "big.dcm"
    small.write_bytes(study["files"][0])
    big.write_bytes(make_dicom(study["study_uid"], study["series"][0], f"{study['sops'][0]}.9", rows=800))
    cli = [sys.executable, "-c", "from diana_core.cli import main; main()"]
    proc = subprocess.run([*cli, "put", str(tiny_disk / "out"), str(small), str(big)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "DIANA_PLUGINS": "dcmdir"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert "put 1, skipped 0, failed 1" in out and f"failed {big}: DcmDir" in out and "No space left" in out, out
    assert every_file(tiny_disk) == [file_name(dixel(study["files"][0]))]
