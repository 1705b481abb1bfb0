"""A receiver that runs for months stays bounded: found by the soak (benchmarks/soak), the DicomReceiver remembered
every study and series it ever received (each poll looked at all of them; each series kept the paths of all its
files) and its sink every SOP instance UID. Stable studies are now forgotten after FORGET_AFTER, and more of a
forgotten study is counted from its folder, so the next STABLE events still name every instance."""

from __future__ import annotations

from diana_core import EventType
from diana_core.testing.waiting import wait_for
from diana_dimse import DicomNode, DicomReceiver, storage
from diana_dimse import receiver as receiver_module
from diana_dimse.testing import free_port, write_studies


def of_type(events: list, kind: EventType) -> list:
    return [e for e in events if EventType.from_label(e.event_type) == kind]


def test_a_stable_study_is_forgotten_and_counted_from_its_folder_when_more_arrives(tmp_path, monkeypatch):
    monkeypatch.setattr(receiver_module, "FORGET_AFTER", 0.3)
    monkeypatch.setattr(receiver_module, "FORGET_EVERY", 0.05)
    files = [str(f) for f in write_studies(tmp_path / "src", studies=1, series=1, per_series=5)]
    rx = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port(), stable_age=0.2).start()
    try:
        node = DicomNode(name="in", host="127.0.0.1", port=rx.port, aet="DIANA")
        assert node.put_many(files[:3]).done == 3
        first: list = []
        wait_for(lambda: first.extend(rx.changes()) or of_type(first, EventType.STUDY_STABLE), what="a stable study")
        assert rx.remembered == 2  # the study and its series, until FORGET_AFTER
        wait_for(lambda: not rx.changes() and rx.remembered == 0, what="the stable study forgotten")

        assert node.put_many(files[3:]).done == 2  # the modality sends two more of the study, later
        later: list = []
        wait_for(lambda: later.extend(rx.changes()) or of_type(later, EventType.STUDY_STABLE), what="stable again")
        [study], [series] = of_type(later, EventType.STUDY_STABLE), of_type(later, EventType.SERIES_STABLE)
        assert study.data.meta["Instances"] == 5 and series.data.meta["Instances"] == 5
        assert sorted(series.data.meta["Files"]) == sorted(str(p) for p in (tmp_path / "in").rglob("*.dcm"))
        assert len(of_type(later, EventType.INSTANCE_ADDED)) == 2
    finally:
        rx.stop()


def test_a_sink_keeps_only_the_latest_uids(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "KEEP_UIDS", 3)
    sink = storage.FolderSink(tmp_path)
    for n in range(10):
        sink.add(f"1.2.{n}", {}, b"x")
    assert sink.count == 10 and list(sink.sop_uids) == ["1.2.7", "1.2.8", "1.2.9"]
