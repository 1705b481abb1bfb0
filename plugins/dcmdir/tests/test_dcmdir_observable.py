"""ObservableDcmDir: FILE_ADDED once per completed file, for copies, renames and slow writes; stop() stops."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from diana_core import EventType
from diana_dcmdir import ObservableDcmDir


@pytest.fixture
def watched(tmp_path):
    obs = ObservableDcmDir(path=str(tmp_path / "inbox"), settle_interval=0.1, create=True)
    assert obs.changes() == []  # starts the watcher
    yield obs
    obs.stop()


def _collect(obs, n, poll, timeout=15.0):
    seen = []

    def enough():
        seen.extend(obs.changes())
        return len(seen) >= n

    poll(enough, timeout=timeout)
    return seen


def _no_more(obs, settle_interval: float) -> list:
    """Give the checker a few more rounds, then return anything extra it emitted."""
    deadline = time.monotonic() + 6 * settle_interval
    extra = []
    while time.monotonic() < deadline:
        extra.extend(obs.changes())
        time.sleep(settle_interval / 2)
    return extra


def test_files_copied_in_are_seen_once(watched, tmp_path, study, poll):
    src = tmp_path / "src"
    src.mkdir()
    for i, data in enumerate(study["files"] * 2):  # 6 files
        (src / f"f{i}.dcm").write_bytes(data)
    os.makedirs(os.path.join(watched.path, "sub", "deeper"))
    for i in range(6):
        shutil.copy(src / f"f{i}.dcm", os.path.join(watched.path, "sub" if i % 2 else "sub/deeper", f"f{i}.dcm"))
    events = _collect(watched, 6, poll)
    assert all(e.event_type == EventType.FILE_ADDED and e.source_name == "ObsDcmDir" for e in events)
    assert sorted(os.path.basename(e.data) for e in events) == [f"f{i}.dcm" for i in range(6)]
    assert _no_more(watched, watched.settle_interval) == []
    assert watched.get(events[0].data).tags["Modality"] == "CT"  # the event data is a path the source can read


def test_files_arriving_by_rename_are_seen(watched, tmp_path, study, poll):
    outside = tmp_path / "staging"
    outside.mkdir()
    for i, data in enumerate(study["files"]):
        (outside / f"o{i}.tmp").write_bytes(data)
        os.rename(outside / f"o{i}.tmp", os.path.join(watched.path, f"outside{i}.dcm"))
        inside_tmp = os.path.join(watched.path, f"inside{i}.partial")
        with open(inside_tmp, "wb") as fp:
            fp.write(data)
        os.rename(inside_tmp, os.path.join(watched.path, f"inside{i}.dcm"))
    events = _collect(watched, 6, poll)
    names = sorted(os.path.basename(e.data) for e in events)
    assert names == sorted([f"outside{i}.dcm" for i in range(3)] + [f"inside{i}.dcm" for i in range(3)])
    assert _no_more(watched, watched.settle_interval) == []


def test_slow_writes_are_announced_complete_without_blocking_others(watched, make_dicom, poll):
    data = make_dicom("2.25.1", "2.25.2", "2.25.3", rows=64)  # ~10 kB: ~20 chunks, ~1 s of writing
    chunks = [data[i:i + 512] for i in range(0, len(data), 512)]
    slow_paths = [os.path.join(watched.path, f"slow{i}.dcm") for i in range(2)]
    done = threading.Event()

    def slow_writer():
        handles = [open(p, "wb") for p in slow_paths]
        for chunk in chunks:
            for fp in handles:
                fp.write(chunk)
                fp.flush()
            time.sleep(watched.settle_interval / 2)  # pauses shorter than the settle time
        for fp in handles:
            fp.close()
        done.set()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    quick = os.path.join(watched.path, "quick.dcm")
    with open(quick, "wb") as fp:
        fp.write(data)
    first = _collect(watched, 1, poll)
    assert [os.path.basename(e.data) for e in first] == ["quick.dcm"]
    assert not done.is_set(), "the quick file must be announced while the slow ones are still being written"
    rest = _collect(watched, 2, poll, timeout=30)
    writer.join()
    assert sorted(os.path.basename(e.data) for e in rest) == ["slow0.dcm", "slow1.dcm"]
    for event in rest:  # complete when announced
        assert os.path.getsize(event.data) == len(data)
        assert watched.get(event.data).tags["SOPInstanceUID"] == "2.25.3"


def test_stop_really_stops_the_threads(tmp_path, study):
    obs = ObservableDcmDir(path=str(tmp_path / "w"), settle_interval=0.05, create=True)
    obs.start()
    threads = {t.name for t in threading.enumerate()}
    assert obs.running and f"{obs.name}-settle" in threads
    obs.stop()
    assert not obs.running
    assert f"{obs.name}-settle" not in {t.name for t in threading.enumerate()}
    obs.stop()  # twice is fine
    with open(os.path.join(obs.path, "after.dcm"), "wb") as fp:
        fp.write(study["files"][0])
    assert obs._events.empty()


def test_closed_or_renamed_files_are_announced_at_once_and_wake_the_watcher(tmp_path, make_dicom, poll):
    """A close-after-write or an atomic rename means the file is complete: no stability checks (here a 60 s settle
    interval would hold anything else back), and the watcher (a 60 s poll interval) is woken instead of polling."""
    from diana_core import Watcher
    from diana_core.usecases.watcher import Trigger

    obs = ObservableDcmDir(name="inbox", path=str(tmp_path / "inbox"), settle_interval=60.0, polling_interval=60.0,
                          create=True)
    handled: list[str] = []
    watcher = Watcher(action_interval=60.0)
    watcher.add_trigger(Trigger(source=obs, event_type=EventType.FILE_ADDED, action=lambda item: handled.append(item)))
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        poll(lambda: obs.running, timeout=10)
        inbox = tmp_path / "inbox"
        (inbox / "written.dcm").write_bytes(make_dicom("1.2.3", "1.2.3.4", "1.2.3.4.1"))  # open, write, close
        tmp = inbox / ".renamed.part"
        tmp.write_bytes(make_dicom("1.2.3", "1.2.3.4", "1.2.3.4.2"))
        os.replace(tmp, inbox / "renamed.dcm")  # a receiver's atomic rename
        poll(lambda: len(handled) >= 2, timeout=10)
    finally:
        watcher.stop()
        thread.join(timeout=20)
    assert sorted(os.path.basename(p) for p in handled) == ["renamed.dcm", "written.dcm"]


def test_a_missing_folder_is_an_error_unless_the_service_says_create(tmp_path):
    from diana_core.errors import ConfigError

    missing = ObservableDcmDir(name="inbox", path=str(tmp_path / "incomin"))
    with pytest.raises(ConfigError, match="does not exist .*create: true"):
        missing.start()
    assert not (tmp_path / "incomin").exists() and not missing.running
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ObservableDcmDir(path=str(tmp_path / "afile"), create=True).start()
    made = ObservableDcmDir(name="inbox", path=str(tmp_path / "new" / "inbox"), create=True)
    made.start()
    try:
        assert made.running and (tmp_path / "new" / "inbox").is_dir()
    finally:
        made.stop()


def test_cli_watch_on_a_mistyped_folder_stops_with_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "incoming").mkdir()
    out = subprocess.run([sys.executable, "-m", "diana_core", "watch", "-r", "say", "./incomin", "-"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr  # 2: systemd will not restart it
    error = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "'./incomin'" in error[0] and "does not exist" in error[0], out.stderr
    assert not (tmp_path / "incomin").exists()
