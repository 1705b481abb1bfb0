"""Watcher while a destination is down (#24), against honest in-memory endpoints: one event probes the destination
per retry while the others wait without using a try; each attempt runs inside ``single_attempt``; at a stop, events
of a source that announces them again are left unacknowledged instead of dead-lettered."""

from __future__ import annotations

from typing import Any

from attrs import define, field

from diana_core import Dixel, Event, EventType, Observable
from diana_core.delivery import attempt_budget
from diana_core.dicom import DicomLevel
from diana_core.embedded import MemoryEndpoint
from diana_core.errors import EndpointUnavailable
from diana_core.usecases.watcher import Trigger, Watcher


@define(kw_only=True)
class Source(Observable):
    """In-memory observable; ``resuming`` says unacknowledged events come back after a restart (Resuming port)."""

    name: str = "src"
    polling_interval: float = 0.01
    resuming: bool = True
    pending: list[Event] = field(factory=list)
    acked: list[str] = field(factory=list)

    def drop(self, n: int) -> None:
        dixel = Dixel(tags={"SOPInstanceUID": f"1.2.{n}"}, meta={"ID": f"id-{n}"}, level=DicomLevel.INSTANCES)
        self.pending.append(Event(event_type=EventType.INSTANCE_ADDED, source_name=self.name, data=dixel))

    def changes(self, **kwargs: Any) -> list[Event]:
        out, self.pending = self.pending, []
        return out

    def ack(self, event: Event) -> None:
        self.acked.append(event.data.meta["ID"])

    def resumes(self) -> bool:
        return self.resuming

    def resume_summary(self) -> str:
        return ""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_probe_per_retry_while_the_destination_is_down_then_all_delivered():
    clock, src, dest = Clock(), Source(), MemoryEndpoint(name="research")
    state = {"down": True, "attempts": 0, "budgets": set()}

    def upload(item: Dixel) -> None:
        state["attempts"] += 1
        state["budgets"].add(attempt_budget())
        if state["down"]:
            raise EndpointUnavailable("research: connection refused")
        dest.put(item)

    w = Watcher(retry_delays=(1.0, 2.0, 5.0), clock=clock)
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=upload, dest=dest))
    for n in range(10):
        src.drop(n)
    w.tick()
    assert state["attempts"] == 1 and w.down_destinations() == {"research": "EndpointUnavailable: research: "
                                                                              "connection refused"}
    for t in (1.0, 3.0):  # still down: one probe per retry, the other nine wait without a try
        clock.now = t
        w.tick()
    assert state["attempts"] == 3 and w.stats.dead == 0 and w.stats.pending_retries == 10
    state["down"] = False
    clock.now = 8.0
    w.tick()
    assert len(dest) == 10 and w.down_destinations() == {} and sorted(src.acked) == sorted(f"id-{n}" for n in range(10))
    assert state["budgets"] == {3.0}  # every attempt ran as one short try


def test_stop_leaves_events_of_a_resuming_source_unacknowledged_and_parks_the_others(tmp_path):
    letters = tmp_path / "dead.jsonl"
    again, once = Source(name="again"), Source(name="once", resuming=False)

    def down(item: Dixel) -> None:
        raise EndpointUnavailable("research: connection refused")

    w = Watcher(retry_delays=(3600.0,), deadletter_path=str(letters), action_interval=0.01)
    for source in (again, once):
        w.add_trigger(Trigger(source=source, event_type=EventType.INSTANCE_ADDED, action=down, dest="research"))
        source.drop(1)
    w.tick()
    w.stop()
    w.run(max_seconds=1)
    assert again.acked == [] and once.acked == ["id-1"]  # only the one that will not come back is parked
    assert len(letters.read_text().splitlines()) == 1


def test_a_backlog_does_not_hold_back_a_destination_that_came_back():
    """Found by the soak (benchmarks/soak): with thousands of events queued (a restart's replay, a burst), a
    destination that failed once got nothing until the whole queue was handled, because its retry waited behind the
    queue and the tick's clock reading kept it "down" for every event. Each tick now takes a bounded batch."""
    clock, src = Clock(), Source()
    research, archive = MemoryEndpoint(name="research"), MemoryEndpoint(name="archive")
    order: list[str] = []
    state = {"down": True}

    def to_research(item: Dixel) -> None:
        clock.now += 0.01  # each delivery takes 10 ms
        if state["down"]:
            state["down"] = False  # restarted: the next try gets through
            raise EndpointUnavailable("research: connection refused")
        research.put(item)
        order.append("research")

    def to_archive(item: Dixel) -> None:
        clock.now += 0.01
        archive.put(item)
        order.append("archive")

    w = Watcher(retry_delays=(1.0, 2.0), clock=clock)
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=to_research, dest=research))
    w.add_trigger(Trigger(source=src, event_type=EventType.INSTANCE_ADDED, action=to_archive, dest=archive))
    for n in range(2000):
        src.drop(n)
    for _ in range(200):
        w.tick()
        if len(research) == len(archive) == 2000:
            break
    assert len(research) == len(archive) == 2000 and w.stats.dead == 0
    assert order.index("research") <= 2 * w.batch, order.index("research")  # was 2000: after the whole queue
