"""Watcher, Trigger, dead letters and route handlers, against honest in-memory endpoints (no servers)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from attrs import define, field

from diana_core import Dixel, Event, EventType, Observable
from diana_core.dicom import DicomLevel
from diana_core.dixel import DixelView
from diana_core.embedded import MemoryEndpoint
from diana_core.errors import EndpointUnavailable, NotSupportedError
from diana_core.plugins import get_plugin_manager, load_plugins, reset_plugin_manager
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases import routes
from diana_core.usecases.deadletter import DeadLetterFile
from diana_core.usecases.watcher import Trigger, Watcher


@define(kw_only=True)
class Inbox(MemoryEndpoint, Observable):
    """An in-memory observable store: ``drop`` stores an item and announces it on the next ``changes()``."""

    name: str = "inbox"
    polling_interval: float = 0.01
    event_types: tuple[EventType, ...] = (EventType.INSTANCE_ADDED, EventType.STUDY_STABLE)
    pending: list[Event] = field(factory=list)
    stopped: int = 0
    broken: bool = False

    def drop(self, dixel: Dixel, event_type: EventType = EventType.INSTANCE_ADDED) -> Dixel:
        self.put(dixel)
        self.pending.append(Event(event_type=event_type, source_name=self.name, data=dixel))
        return dixel

    def changes(self, **kwargs: Any) -> list[Event]:
        if self.broken:
            raise EndpointUnavailable(f"{self.name}: down")
        out, self.pending = self.pending, []
        return out

    def stop(self) -> None:
        self.stopped += 1


@define(kw_only=True)
class AnonymizingStore(MemoryEndpoint):
    """MemoryEndpoint with the Anonymizer port: applies the replacement map to a stored copy."""

    name: str = "anon-store"

    def anonymize(self, item: Any, level: DicomLevel = DicomLevel.STUDIES, replacement_map: Any = None,
                  **kwargs: Any) -> Dixel:
        original = self.get(item)
        copy = Dixel(tags={**original.tags, **replacement_map}, level=original.level, file=original.file)
        self.put(copy)
        return copy


def instance(n: int, patient: str = "Doe^Jane") -> Dixel:
    return Dixel(
        tags={"PatientID": "MRN123", "PatientName": patient, "PatientBirthDate": "19700101",
              "StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4", "SOPInstanceUID": f"1.2.3.4.{n}",
              "AccessionNumber": "ACC1", "StudyDate": "20200101", "StudyTime": "120000"},
        level=DicomLevel.INSTANCES, file=f"file-{n}".encode())


def copy_to(dest: MemoryEndpoint, fail_on: set[str] | None = None, fail_times: dict[str, int] | None = None):
    """A handler putting items into dest; raises for ids in fail_on (always) or fail_times (first n calls)."""

    def handler(item: Dixel) -> str:
        oid = item.oid()
        if fail_on and oid in fail_on:
            raise EndpointUnavailable(f"{dest.name}: refused {oid}")
        if fail_times and fail_times.get(oid, 0) > 0:
            fail_times[oid] -= 1
            raise EndpointUnavailable(f"{dest.name}: busy for {oid}")
        return dest.put(item)

    return handler


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_trigger_routes_matching_events_only():
    src, dest = Inbox(), MemoryEndpoint()
    w = Watcher(clock=Clock())
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=copy_to(dest)))
    src.drop(instance(1))
    src.drop(instance(2), EventType.STUDY_STABLE)  # no trigger for this type
    w.fire(Event(event_type=EventType.INSTANCE_ADDED, source_name="elsewhere", data=instance(3)))
    w.tick()
    assert len(dest) == 1 and dest.exists(instance(1).oid())
    assert (w.stats.seen, w.stats.handled, w.stats.failed) == (3, 1, 0)


def test_failing_handler_does_not_stop_the_watcher(caplog):
    src, dest = Inbox(), MemoryEndpoint()
    bad = instance(2)
    w = Watcher(retry_delays=(), clock=Clock())
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=copy_to(dest, {bad.oid()})))
    for n in range(1, 5):
        src.drop(instance(n))
    with caplog.at_level(logging.INFO):
        w.tick()
    assert len(dest) == 3 and not dest.exists(bad.oid())
    assert (w.stats.handled, w.stats.failed, w.stats.dead) == (3, 1, 1)
    assert bad.oid() in caplog.text  # the failure names the item by its non-PHI id...
    assert "Doe" not in caplog.text and "MRN123" not in caplog.text  # ...and never by patient data


def test_retry_waits_for_its_backoff_then_succeeds():
    clock = Clock()
    src, dest = Inbox(), MemoryEndpoint()
    flaky = instance(1)
    w = Watcher(retry_delays=(10.0, 60.0), clock=clock)
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED,
                          action=copy_to(dest, fail_times={flaky.oid(): 1})))
    src.drop(flaky)
    w.tick()
    assert w.stats.failed == 1 and w.stats.pending_retries == 1 and len(dest) == 0
    clock.now = 5.0
    w.tick()
    assert w.stats.retried == 0 and len(dest) == 0  # not due yet: nothing slept, nothing retried
    clock.now = 10.0
    w.tick()
    assert (w.stats.retried, w.stats.handled, w.stats.dead, w.stats.pending_retries) == (1, 1, 0, 0)
    assert dest.exists(flaky.oid())


def test_retries_then_dead_letter_then_replay(tmp_path):
    clock = Clock()
    src, dest = Inbox(), MemoryEndpoint()
    item = instance(7)
    refused = {item.oid()}
    letters = tmp_path / "dead.jsonl"
    w = Watcher(retry_delays=(1.0, 2.0), deadletter_path=str(letters), clock=clock)
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=copy_to(dest, refused),
                          dest=dest, handler="copy_to"))
    src.drop(item)
    for t in (0.0, 1.0, 3.0):
        clock.now = t
        w.tick()
    assert (w.stats.failed, w.stats.retried, w.stats.dead) == (3, 2, 1)
    [record] = [json.loads(line) for line in letters.read_text().splitlines()]
    assert letters.stat().st_mode & 0o077 == 0, "dead letters hold tags: owner-only permissions"
    assert record["handler"] == "copy_to" and record["attempts"] == 3
    assert "EndpointUnavailable" in record["error"] and item.oid() in record["error"]
    assert record["event"]["source_name"] == "inbox" and "file" not in record["event"]["data"]["dixel"]

    # still failing: the record stays, with one more attempt
    result = w.replay(str(letters))
    assert (result.handled, result.failed) == (0, 1)
    assert json.loads(letters.read_text())["attempts"] == 4
    # fixed: the event is handled and the file emptied
    refused.clear()
    result = w.replay(str(letters))
    assert (result.handled, result.failed) == (1, 0)
    assert dest.exists(item.oid()) and not letters.exists()


def test_replay_without_a_matching_trigger_keeps_the_record(tmp_path):
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    trig = Trigger(source=Inbox(name="gone"), event_type=EventType.INSTANCE_ADDED, action=lambda item: None)
    letters.append(Event(event_type=EventType.INSTANCE_ADDED, source_name="gone", data="a/b/c.dcm"), trig, 4, "X")
    result = Watcher().replay(str(letters.path))
    assert result.unroutable == 1 and len(list(letters.records())) == 1
    assert DeadLetterFile.event_of(next(letters.records())).data == "a/b/c.dcm"


def test_stop_ends_run_and_stops_sources_and_parks_pending_retries(tmp_path):
    src, dest = Inbox(polling_interval=0.01), MemoryEndpoint()
    letters = tmp_path / "dead.jsonl"
    stuck = instance(9)
    w = Watcher(action_interval=0.05, retry_delays=(3600.0,), deadletter_path=str(letters))
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=copy_to(dest, {stuck.oid()})))
    src.drop(instance(1))
    src.drop(stuck)
    runner = threading.Thread(target=w.run)
    runner.start()
    deadline = threading.Event()
    for _ in range(500):  # poll the condition, no fixed sleep
        if w.stats.handled == 1 and w.stats.pending_retries == 1:
            break
        deadline.wait(0.01)
    w.stop()
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert src.stopped == 1 and dest.exists(instance(1).oid())
    assert len(letters.read_text().splitlines()) == 1  # the waiting retry was not lost


def test_run_with_events_fired_from_another_thread_and_failing_source():
    src, dest = Inbox(broken=True), MemoryEndpoint()
    w = Watcher(action_interval=0.01)
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=copy_to(dest)))
    stats = w.run(max_seconds=0.05)
    assert stats.source_errors >= 1  # the source was down: logged and polled again, not fatal
    w.fire(Event(event_type=EventType.INSTANCE_ADDED, source_name="inbox", data=instance(4)))
    w.run(max_seconds=0.02)
    assert dest.exists(instance(4).oid())


# --- route handlers ------------------------------------------------------------------------------------------------
def test_mk_route_from_descriptions_picks_the_event_type():
    services = {"src": {"ctype": "MemoryEndpoint"}, "dst": {"ctype": "MemoryEndpoint"}}
    trig = routes.mk_route("put_item", "src", "dst", services=services)
    assert trig.event_type == EventType.INSTANCE_ADDED and trig.handler == "put_item"
    assert trig.route == {"handler": "put_item", "source": "src", "dest": "dst", "event": "instance_added",
                          "options": {}}
    assert routes.event_type_for("send_item", Inbox()) == EventType.STUDY_STABLE  # the source's own list wins
    assert routes.mk_route("say", {"ctype": "MemoryEndpoint", "name": "m"}).event_type is None  # any event
    item = instance(1)
    trig.source.put(item)
    trig.action(Dixel(meta={"ID": item.oid()}, level=DicomLevel.INSTANCES))
    assert trig.dest.get(item.oid()) is item


def test_plugin_handler_is_found_by_name():
    calls = []

    class ShoutPlugin:
        @staticmethod
        def diana_handlers(register):
            register("shout", lambda item, source=None, dest=None, **kw: calls.append(item))

    plugins = load_plugins(entry_points=False)
    plugins.add(ShoutPlugin(), name="shout")
    previous = get_plugin_manager()
    reset_plugin_manager(plugins)
    try:
        trig = routes.mk_route("shout", {"ctype": "MemoryEndpoint"})
        trig.action("x")
    finally:
        reset_plugin_manager(previous)
    assert calls == ["x"]


def test_send_item_anonymized_copy_lands_with_the_predicted_id():
    src, dest = AnonymizingStore(), MemoryEndpoint()
    item = instance(1)
    src.put(item)
    routes.send_item(Dixel(meta={"ID": item.oid()}, level=DicomLevel.INSTANCES), source=src, dest=dest,
                     anonymize=True, remove_src=True)
    [sent] = dest._items.values()
    assert sent.oid() == Pseudonymizer().predicted_oid(item.tags, DicomLevel.INSTANCES)
    assert sent.tags["PatientID"] != "MRN123" and sent.tags["PatientName"] != "Doe^Jane"
    assert len(src) == 0  # original removed, anonymized copy removed


def test_send_item_to_a_name_needs_the_sender_port():
    with pytest.raises(NotSupportedError):
        routes.send_item(instance(1), source=MemoryEndpoint(), dest="peer")


def test_upload_item_reads_the_file_from_source_and_can_anonymize_in_dest():
    src, dest = MemoryEndpoint(), AnonymizingStore()
    item = instance(3)
    src.put(item)
    new = routes.upload_item(Dixel(meta={"ID": item.oid()}, level=DicomLevel.INSTANCES), source=src, dest=dest,
                             anonymize=True, local=False)  # the dest-side way (the local way: e2e tests)
    assert len(dest) == 1 and not dest.exists(item.oid())
    assert new.oid() == Pseudonymizer().predicted_oid(item.tags, DicomLevel.INSTANCES)


def test_pull_and_save_index_query_and_say(capsys):
    class Remote(MemoryEndpoint):
        retrieved: list = []

        def find(self, query, level=DicomLevel.STUDIES, retrieve=False, **kwargs):
            Remote.retrieved.append(retrieve)
            return super().find(query, level=level)

        def get(self, item, view=DixelView.TAGS, **kwargs):
            d = super().get(item)
            return Dixel(tags=d.tags, level=d.level, file=b"zip" if DixelView.FILE in view else None)

    study = Dixel(tags={"PatientID": "P", "StudyInstanceUID": "9.8", "AccessionNumber": "A9"}, file=b"zip")
    remote, folder, index = Remote(), MemoryEndpoint(), MemoryEndpoint()
    remote.put(study)
    assert routes.pull_and_save_item(Dixel(tags={"StudyInstanceUID": "9.8"}), source=remote, dest=folder)
    assert Remote.retrieved == [True] and folder.get(study.oid()).file == b"zip"
    routes.index_item(study.oid(), source=remote, dest=index, level="studies")
    assert index.exists(study.oid())
    assert routes.query_and_index({"AccessionNumber": "A9"}, source=remote, dest=MemoryEndpoint()) == 1
    routes.say(study, source=remote, suffix="arrived")
    out = capsys.readouterr().out
    assert study.oid() in out and "arrived" in out and "A9" not in out


def test_cli_replay_rebuilds_routes_from_the_dead_letter_file(tmp_path):
    from click.testing import CliRunner

    from diana_core.cli.app import cli

    services = tmp_path / "services.json"
    services.write_text(json.dumps({"src": {"ctype": "MemoryEndpoint"}}))
    item = instance(5)
    trig = routes.mk_route("say", "src", services={"src": {"ctype": "MemoryEndpoint"}})
    letters = DeadLetterFile(tmp_path / "dead.jsonl")
    letters.append(Event(event_type=EventType.INSTANCE_ADDED, source_name="src", data=item), trig, 4, "X: boom")
    res = CliRunner().invoke(cli, ["-s", str(services), "watch", "--replay", str(letters.path)])
    assert res.exit_code == 0, res.output
    assert f"src: {item.oid()}" in res.stdout and "replayed 1, failed again 0" in res.stdout
    assert not Path(letters.path).exists()


@define(kw_only=True)
class AckingInbox(Inbox):
    """An Inbox with the Acknowledging port: records which events the Watcher acknowledged."""

    acked: list[Any] = field(factory=list)

    def ack(self, event: Event) -> None:
        self.acked.append(event.data.oid())


def test_a_programming_error_is_dead_lettered_at_once_not_retried(tmp_path):
    src = AckingInbox()
    letters = tmp_path / "dead.jsonl"
    w = Watcher(retry_delays=(1.0, 2.0, 3.0), deadletter_path=str(letters), clock=Clock())

    def broken(item: Dixel) -> None:
        raise TypeError("handler() got an unexpected keyword argument")

    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=broken))
    src.drop(instance(1))
    w.tick()
    assert (w.stats.failed, w.stats.dead, w.stats.pending_retries) == (1, 1, 0)
    [record] = list(DeadLetterFile(letters).records())
    assert record["attempts"] == 1 and record["error"].startswith("TypeError")
    assert src.acked == [instance(1).oid()]  # dead-lettered counts as finished: the cursor may move on


def test_an_event_is_acknowledged_once_every_route_finished_with_it():
    clock = Clock()
    src, a, b = AckingInbox(), MemoryEndpoint(name="a"), MemoryEndpoint(name="b")
    item = instance(1)
    w = Watcher(retry_delays=(10.0,), clock=clock)
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=copy_to(a)))
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED,
                          action=copy_to(b, fail_times={item.oid(): 1})))
    src.drop(item)
    src.drop(instance(2), EventType.STUDY_STABLE)  # no route wants it: acknowledged at once
    w.tick()
    assert len(a) == 1 and src.acked == [instance(2).oid()]  # route b still owes a retry
    clock.now = 10.0
    w.tick()
    assert len(b) == 1 and src.acked == [instance(2).oid(), item.oid()]


def test_two_observers_of_one_source_name_are_polled_once():
    first, second = Inbox(name="inbox"), Inbox(name="inbox")
    seen: list[str] = []
    w = Watcher(clock=Clock())
    w.add_trigger(Trigger(source=first, event_type=EventType.INSTANCE_ADDED, action=lambda d: seen.append("r1")))
    w.add_trigger(Trigger(source=second, event_type=EventType.INSTANCE_ADDED, action=lambda d: seen.append("r2")))
    first.drop(instance(1))
    second.drop(instance(1))  # both observers saw the same file
    w.tick()
    assert sorted(seen) == ["r1", "r2"] and len(w.sources()) == 1
