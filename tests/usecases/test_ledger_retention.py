"""The routes ledger stays bounded: rows older than ``keep_seconds`` are pruned as new deliveries are recorded
(found by the soak, benchmarks/soak: before, a router kept one row per delivery for ever), and ``diana watch``
refuses a retention shorter than its retry schedule, which would let a retried event be delivered twice."""

from __future__ import annotations

import os

from click.testing import CliRunner

from diana_core.cli import cli
from diana_core.usecases.ledger import PRUNE_EVERY, DeliveryLedger


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_rows_older_than_keep_are_pruned_and_the_file_stops_growing(tmp_path):
    clock = Clock()
    path = tmp_path / "ledger.sqlite"
    ledger = DeliveryLedger(path, keep_seconds=300, clock=clock)
    counts, sizes = [], []
    for minute in range(30):  # half an hour of traffic, 50 deliveries a minute, in simulated time
        for n in range(50):
            ledger.record("ct", "research", f"4:1.2.{minute}.{n}" + "9" * 40)  # UID-sized keys
            clock.now += 60 / 50
        counts.append(ledger.count())
        sizes.append(os.path.getsize(path))
    assert ledger.done("ct", "research", "4:1.2.29.49" + "9" * 40)  # the recent ones are remembered
    assert not ledger.done("ct", "research", "4:1.2.0.0" + "9" * 40)  # half an hour old: pruned
    window = int((300 + PRUNE_EVERY) / 60 * 50)  # the keep window plus one prune interval
    assert max(counts) <= window, counts
    assert counts[-1] >= 300 / 60 * 50  # nothing younger than keep_seconds was dropped
    assert ledger.pruned == 30 * 50 - counts[-1]
    assert sizes[-1] <= 1.1 * sizes[len(sizes) // 2], sizes  # freed pages are reused: the file plateaus
    ledger.close()


def test_without_keep_nothing_is_pruned(tmp_path):
    clock = Clock()
    ledger = DeliveryLedger(tmp_path / "ledger.sqlite", keep_seconds=None, clock=clock)
    for n in range(50):
        ledger.record("ct", "research", f"4:1.2.{n}")
        clock.now += 3600
    assert ledger.count() == 50 and ledger.prune() == 0
    ledger.close()


def test_watch_refuses_a_ledger_keep_shorter_than_the_retry_schedule(tmp_path):
    routes = tmp_path / "routes.yml"
    routes.write_text("routes:\n  - {name: all, source: inbox, dest: archive}\n")
    result = CliRunner().invoke(cli, ["watch", "-R", str(routes), "--ledger", str(tmp_path / "l.sqlite"),
                                      "--ledger-keep", "5m", "--max-seconds", "0"])
    assert result.exit_code == 2, result.output
    assert "--ledger-keep" in result.output and "retry schedule (608 s)" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["watch", "-R", str(routes), "--ledger-keep", "soon"])
    assert result.exit_code == 2 and "not a duration: 'soon'" in result.output
    assert not (tmp_path / "l.sqlite").exists()
