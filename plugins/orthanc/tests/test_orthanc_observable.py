"""ObservableOrthanc against a real Orthanc: paged /changes, events, JSON cursor, exactly-once across restarts."""

from __future__ import annotations

import json
import time

import pytest

from diana_core import EventType
from diana_core.dicom import DicomLevel
from diana_core.errors import ConfigError
from diana_orthanc import ObservableOrthanc, Orthanc
from diana_orthanc.testdata import iter_ct_bytes


def observer(server, **kw) -> ObservableOrthanc:
    desc = {k: v for k, v in server.service_desc().items() if k != "ctype"}
    return ObservableOrthanc(**desc, **kw)


def test_events_and_resume_after_restart_exactly_once(clean_orthancs, tmp_path):
    server = clean_orthancs.local
    cursor = tmp_path / "state" / "cursor.json"
    upload = Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"})
    obs = observer(server, persist_file=str(cursor), page_size=7)
    assert obs.changes() == []  # starts at the newest change: history is not replayed
    files = list(iter_ct_bytes(10, per_series=5, per_study=2, run="observe"))
    for data in files[:6]:
        upload.put(data)
    first = obs.changes()
    kinds = [e.event_type for e in first]
    assert kinds.count(EventType.INSTANCE_ADDED) == 6
    assert kinds.count(EventType.SERIES_ADDED) == 2 and kinds.count(EventType.STUDY_ADDED) == 1
    inst = next(e.data for e in first if e.event_type == EventType.INSTANCE_ADDED)
    assert inst.level == DicomLevel.INSTANCES and upload.exists(inst)
    before = json.loads(cursor.read_text())["last_change"]
    assert before < min(e.event_id for e in first)  # read is not handled: the cursor waits for acks
    for event in first:
        obs.ack(event)
    assert json.loads(cursor.read_text())["last_change"] == max(e.event_id for e in first)
    obs.stop()

    for data in files[6:]:
        upload.put(data)
    restarted = observer(server, persist_file=str(cursor), start_from_change=0)
    second = restarted.changes()
    assert [e.event_type for e in second].count(EventType.INSTANCE_ADDED) == 4
    for event in second:
        restarted.ack(event)
    seqs = [e.event_id for e in first + second]
    assert len(seqs) == len(set(seqs)) and min(e.event_id for e in second) > max(e.event_id for e in first)
    rest = restarted.changes()  # only "stable" events may still come (StableAge 1 s), never a repeat
    assert all(e.event_type in (EventType.STUDY_STABLE, EventType.SERIES_STABLE) for e in rest)
    assert not {e.event_id for e in rest} & set(seqs)


def test_a_restart_resumes_at_the_oldest_event_not_acknowledged(clean_orthancs, tmp_path):
    server = clean_orthancs.local
    cursor = tmp_path / "cursor.json"
    upload = Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"})
    obs = observer(server, persist_file=str(cursor))
    obs.changes()
    for data in iter_ct_bytes(5, per_series=5, run="ack"):
        upload.put(data)
    read = obs.changes()
    events = [e for e in read if e.event_type == EventType.INSTANCE_ADDED]
    assert len(events) == 5
    for other in (e for e in read if e.event_type != EventType.INSTANCE_ADDED):
        obs.ack(other)
    obs.ack(events[0])
    obs.ack(events[2])  # out of order: the cursor stays before events[1]
    assert json.loads(cursor.read_text())["last_change"] == events[1].event_id - 1
    # the daemon dies here (no more acks): a new observer gets every event from events[1] on again
    again = [e for e in observer(server, persist_file=str(cursor)).changes()
             if e.event_type == EventType.INSTANCE_ADDED]
    assert [e.event_id for e in again] == [e.event_id for e in events[1:]]


def test_stable_study_event_arrives(clean_orthancs):
    server = clean_orthancs.local
    obs = observer(server)
    obs.changes()
    Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"}).put(
        next(iter_ct_bytes(1, run="stable")))
    seen: list = []
    deadline = time.monotonic() + 15
    while EventType.STUDY_STABLE not in [e.event_type for e in seen] and time.monotonic() < deadline:
        seen += obs.changes()
        time.sleep(0.2)  # polling Orthanc's change log: StableAge is 1 s
    types = [e.event_type for e in seen]
    assert EventType.STUDY_STABLE in types and EventType.SERIES_STABLE in types


def test_start_from_change_replays_history(clean_orthancs):
    server = clean_orthancs.local
    upload = Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"})
    last = upload.gateway.last_change()
    upload.put(next(iter_ct_bytes(1, run="replay")))
    events = observer(server, start_from_change=last).changes()
    assert [e.event_type for e in events][:3] == [EventType.INSTANCE_ADDED, EventType.SERIES_ADDED,
                                                 EventType.STUDY_ADDED]


def test_corrupt_cursor_file_is_config_error(orthanc_local, tmp_path):
    bad = tmp_path / "cursor.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cursor"):
        observer(orthanc_local, persist_file=str(bad)).changes()
