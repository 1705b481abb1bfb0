"""diana_core.delivery: durable writes, pending marks (what a restart replays), the DICOM sniff and the attempt
budget, on real files."""

from __future__ import annotations

import os
import subprocess
import sys

from diana_core.delivery import (
    PendingMarks,
    attempt_budget,
    default_state_file,
    durable_write,
    looks_like_dicom,
    refuse_unless_plausible,
    single_attempt,
)
from diana_core.errors import InvalidDicom


def test_durable_write_is_atomic_marks_and_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "x.dcm"
    durable_write(target, b"one", mark=True)
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in target.parent.iterdir()) == [".x.dcm.pending", "x.dcm"]  # no temp file left
    marks = PendingMarks(tmp_path)
    assert list(marks.pending()) == [target] and marks.is_pending(target)
    assert marks.done(target) and not marks.done(target)
    assert list(marks.pending()) == []


def test_a_mark_whose_file_is_gone_is_dropped(tmp_path):
    durable_write(tmp_path / "gone.dcm", b"x", mark=True)
    (tmp_path / "gone.dcm").unlink()
    assert list(PendingMarks(tmp_path).pending()) == [] and not list(tmp_path.iterdir())


def test_a_killed_writer_leaves_the_previous_file_whole(tmp_path):
    target = tmp_path / "f.dcm"
    durable_write(target, b"old")
    code = ("import os, sys; from diana_core import delivery\n"
            "real = os.replace\n"
            "def die(*a): os._exit(9)\n"
            "delivery.os.replace = die\n"
            f"delivery.durable_write({str(target)!r}, b'new' * 1000)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert target.read_bytes() == b"old"


def test_looks_like_dicom_refuses_zeros_text_and_a_bare_preamble(tmp_path):
    assert not looks_like_dicom(bytes(200))
    assert not looks_like_dicom(bytes(128) + b"DICM" + bytes(64))
    assert not looks_like_dicom(b"hello, this is not DICOM at all " * 8)
    assert looks_like_dicom(bytes(128) + b"DICM\x02\x00\x00\x00UL")
    assert looks_like_dicom(b"\x08\x00\x05\x00CS\n\x00ISO_IR 100")  # a bare dataset
    big = tmp_path / "zeros.dcm"
    with open(big, "wb") as fh:
        fh.truncate(3 << 30)
    try:
        refuse_unless_plausible(big)
        raise AssertionError("a file of zeros passed")
    except InvalidDicom as exc:
        assert "zeros.dcm" in str(exc) and "\n" not in str(exc)
    try:
        refuse_unless_plausible(big, max_bytes=1 << 30)
        raise AssertionError("a file over the limit passed")
    except InvalidDicom as exc:
        assert "limit" in str(exc) and "max_instance_bytes" in str(exc)
    os.unlink(big)


def test_attempt_budget_is_scoped_and_default_state_file_is_keyed_by_path(tmp_path, monkeypatch):
    assert attempt_budget() is None
    with single_attempt(2.5):
        assert attempt_budget() == 2.5
    assert attempt_budget() is None
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    a, b = default_state_file("folders", "/data/in"), default_state_file("folders", "/data/in2")
    assert a != b and a.startswith(str(tmp_path / "diana" / "folders"))


def test_private_dirs_are_owner_only_and_tighten_our_own_folders_but_not_the_users(tmp_path):
    """Diana's state and data folders name studies: 0700 under a permissive umask; an existing loose folder of
    ours is tightened, the XDG folder above is not touched (#26)."""
    import os

    from diana_core.delivery import private_dirs

    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o755)
    os.chmod(xdg, 0o755)
    (xdg / "diana").mkdir()
    os.chmod(xdg / "diana", 0o755)
    old = os.umask(0)
    try:
        private_dirs(xdg / "diana" / "folders", xdg)
    finally:
        os.umask(old)
    modes = [oct(p.stat().st_mode & 0o777) for p in (xdg, xdg / "diana", xdg / "diana" / "folders")]
    assert modes == ["0o755", "0o700", "0o700"]
