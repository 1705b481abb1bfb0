"""Every zip Diana accepts refuses bombs of several shapes within seconds and bounded memory.

Targets: DcmDir ``put_zip`` (folder of files), DcmDir with study zips, and a real Orthanc upload (which would
otherwise unpack the bomb itself). Time and peak Python memory (tracemalloc) are measured per shape and target.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from diana_core import Dixel, load_services
from diana_core.archives import ZipLimits, check_archive, iter_members
from diana_core.dicom import DicomLevel
from diana_core.errors import ArchiveRefused, InvalidDicom
from diana_dcmdir import DcmDir
from diana_orthanc.testing import OrthancServer
from tests.zipbombs import SHAPES, MiB, raw_zip

SECONDS = 5.0
PEAK = 32 * MiB
EXPECTED = {
    "one_huge_member": r"compression ratio over 200",
    "many_members": r"60000 members \(limit 50000\)",
    "high_ratio": r"compression ratio over 200",
    "lying_header": r"unreadable \(Bad CRC-32",
    "nested": r"itself a zip archive",
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {name: make(folder) for name, make in SHAPES.items()}


def measured(action: Callable[[], Any]) -> tuple[BaseException, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        action()
    except InvalidDicom as exc:
        error: BaseException = exc
    else:
        raise AssertionError("the bomb was accepted")
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, elapsed, peak


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("target", ["dcmdir_put_zip", "dcmdir_study_zips", "orthanc_upload", "orthanc_raw"])
def test_bomb_refused_fast_in_bounded_memory(shape: str, target: str, bombs: dict[str, Path], tmp_path: Path,
                                             orthanc_local: OrthancServer) -> None:
    path = bombs[shape]
    parcel = Dixel(meta={"FileName": str(path)}, level=DicomLevel.STUDIES)
    if target.startswith("orthanc"):
        dest = load_services({"o": orthanc_local.service_desc()})["o"]
        before = dest.gateway.statistics()["CountInstances"]
        if target == "orthanc_raw":  # bytes or a path POSTed as an "instance": Orthanc would unpack a zip
            parcel = Dixel(file=path.read_bytes(), level=DicomLevel.INSTANCES) if shape != "nested" else str(path)
    else:
        dest = DcmDir(path=str(tmp_path / "out"), study_zips=target == "dcmdir_study_zips")
    error, elapsed, peak = measured(lambda: dest.put(parcel))
    print(f"\nzip bomb {shape:16} {target:18} {path.stat().st_size / MiB:7.1f} MiB on disk: refused in "
          f"{elapsed * 1000:7.1f} ms, peak {peak / MiB:5.1f} MiB: {type(error).__name__}")
    assert elapsed < SECONDS and peak < PEAK
    assert "archive" in str(error) or "DcmDir" in str(error)
    import re

    assert re.search(EXPECTED[shape], str(error)), str(error)
    if shape != "lying_header":
        assert isinstance(error, ArchiveRefused) and "raise zip_limits" in str(error)
    if target.startswith("orthanc"):
        assert dest.gateway.statistics()["CountInstances"] == before  # Orthanc never saw the archive
    else:
        assert not any(p.is_file() for p in (tmp_path / "out").rglob("*") if not p.name.startswith("."))


def test_limits_are_configurable_from_the_service_file(tmp_path: Path, bombs: dict[str, Path]) -> None:
    strict = load_services({"d": {"ctype": "DcmDir", "path": str(tmp_path),
                                  "zip_limits": {"max_member": 1024, "max_members": 2, "max_ratio": 5}}})["d"]
    assert strict.zip_limits == ZipLimits(max_member=1024, max_members=2, max_ratio=5)
    small = raw_zip([(f"f{i}", b"\x03\x00", 0) for i in range(3)])
    with pytest.raises(ArchiveRefused, match="3 members \\(limit 2\\)"):
        strict.put_zip(small)
    # within generous limits the 64 MiB member is streamed to its end (where the CRC the builder left 0 fails)
    generous = ZipLimits(max_ratio=2000)
    with pytest.raises(InvalidDicom, match="Bad CRC-32"):
        check_archive(bombs["high_ratio"], "ratio.zip", generous)


def test_members_of_a_genuine_archive_stream_through(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "ok.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"x" * (3 * MiB))  # ratio ~1000 over the 1 MiB floor: refused
        archive.writestr("b.bin", os.urandom(MiB))
    with pytest.raises(ArchiveRefused, match="compression ratio over 200"):
        list(iter_members(path, "ok.zip"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small.txt", b"x" * 1000)  # tiny members are never refused for their ratio
        archive.writestr("b.bin", os.urandom(MiB))
    assert [(n, len(d)) for n, d in iter_members(path, "ok.zip")] == [("small.txt", 1000), ("b.bin", MiB)]
    assert check_archive(path, "ok.zip") == 2
