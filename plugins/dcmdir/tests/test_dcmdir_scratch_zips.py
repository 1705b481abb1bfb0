"""Scratch study zips (#27): the relay stores members uncompressed, and an archive Diana wrote itself is not
re-inflated for the zip-bomb check while an archive from outside (or one changed since) still is."""

import os
import zipfile

import pytest

from diana_core import DicomLevel, Dixel
from diana_core.archives import ZipLimits, check_archive
from diana_core.errors import ArchiveRefused
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.relay import pseudonymizing_relay
from diana_dcmdir import DcmDir


def _study_zip(tmp_path, study):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for i, data in enumerate(study["files"]):
            out.writestr(f"{i}.dcm", data)
    return archive


def _put(endpoint, archive):
    return endpoint.put(Dixel(meta={"FileName": str(archive)}, level=DicomLevel.STUDIES),
                        pseudonymizer=Pseudonymizer(unkeyed=True))


def test_the_relay_stores_members_and_a_user_folder_still_deflates(tmp_path, study):
    archive = _study_zip(tmp_path, study)
    relay = pseudonymizing_relay(tmp_path / "relay", study_zips=True)
    assert _put(relay, archive).done == 3
    (scratch,) = (tmp_path / "relay").rglob("*.zip")
    with zipfile.ZipFile(scratch) as z:
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_STORED] * 3
    archive_folder = DcmDir(path=str(tmp_path / "archive"), study_zips=True)
    assert _put(archive_folder, archive).done == 3
    (kept,) = (tmp_path / "archive").rglob("*.zip")
    with zipfile.ZipFile(kept) as z:
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_DEFLATED] * 3


def test_an_archive_diana_wrote_skips_the_bomb_check_until_it_changes(tmp_path, study):
    archive = _study_zip(tmp_path, study)
    relay = pseudonymizing_relay(tmp_path / "relay", study_zips=True)
    _put(relay, archive)
    (ours,) = (tmp_path / "relay").rglob("*.zip")
    tiny = ZipLimits(max_total=1024)  # every member is bigger: inflating anything at all would refuse
    assert check_archive(ours, "ours", tiny) == 3  # trusted: only the directory was read
    outside = tmp_path / "outside.zip"
    outside.write_bytes(ours.read_bytes())  # the same bytes, not written by Diana
    with pytest.raises(ArchiveRefused, match="outside"):
        check_archive(outside, "outside", tiny)
    with pytest.raises(ArchiveRefused):
        check_archive(ours.read_bytes(), "bytes", tiny)  # bytes are never trusted
    stat = ours.stat()
    os.utime(ours, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # changed since we wrote it
    with pytest.raises(ArchiveRefused, match="ours"):
        check_archive(ours, "ours", tiny)


def test_zip_compression_is_validated(tmp_path):
    with pytest.raises(ValueError, match="zip_compression"):
        DcmDir(path=str(tmp_path), study_zips=True, zip_compression="bzip2")
