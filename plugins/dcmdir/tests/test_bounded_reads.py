"""Bounded reads (#24): a DICOM header followed by far more bytes than it declares is refused before the file is
read; a file over ``max_instance_bytes`` is refused unread; each error is one line naming the file."""

from __future__ import annotations

import time

import pytest

from diana_core.errors import InvalidDicom
from diana_dcmdir import DcmDir, reading


def test_a_header_that_does_not_declare_the_size_is_refused_unread(tmp_path, make_dicom):
    path = tmp_path / "padded.dcm"
    with open(path, "wb") as fh:
        fh.write(make_dicom("2.25.1", "2.25.2", "2.25.3", rows=16))
        fh.truncate(300 << 20)  # sparse: 300 MiB the 16x16 header does not account for
    started = time.monotonic()
    with pytest.raises(InvalidDicom, match="padded.dcm.*declares") as exc:
        DcmDir(path=str(tmp_path)).get(str(path), view="file")
    assert time.monotonic() - started < 2 and "\n" not in str(exc.value)


def test_a_file_over_max_instance_bytes_is_refused_unread(tmp_path, make_dicom):
    (tmp_path / "ok.dcm").write_bytes(make_dicom("2.25.1", "2.25.2", "2.25.4", rows=64))
    small = DcmDir(path=str(tmp_path), max_instance_bytes=1024)
    with pytest.raises(InvalidDicom, match="ok.dcm.*max_instance_bytes"):
        small.get(str(tmp_path / "ok.dcm"), view="file")
    assert DcmDir(path=str(tmp_path)).get(str(tmp_path / "ok.dcm"), view="file").file
    assert reading.declared_size(str(tmp_path / "ok.dcm")) == (tmp_path / "ok.dcm").stat().st_size
