"""Executor / JobState ports with their embedded implementations, and the in-process PACS protection (LocalGuard)."""

from __future__ import annotations

import os
import stat
import threading
import time
from datetime import datetime

import pytest

from diana_core.embedded import SqliteRegistry
from diana_core.errors import ConfigError
from diana_core.execution import Executor, JobState, UnitResult, WorkUnit
from diana_core.protection import Limits, LocalGuard, TransferWindow
from diana_core.usecases.collector import Collector
from diana_core.usecases.executors import ThreadExecutor
from diana_core.usecases.index_units import index_with, resolve_registry, run_index_unit, walk_dirs
from diana_core.usecases.indexer import FileIndexer
from diana_core.usecases.jobstate import EmbeddedJobState

from .collector_fakes import MemoryArchive, MemoryPacs, make_study
from .test_indexer import pydicom_reader, tree  # noqa: F401 - the fixture


def test_units_and_results_round_trip_as_plain_data():
    unit = WorkUnit(job="j", kind="collect", key="ACC1", item={"AccessionNumber": "ACC1"},
                    services={"source": "pacs", "dest": "research"}, options={"anonymize": True})
    assert WorkUnit.fromdict(unit.asdict()) == unit
    res = UnitResult("j", "index", "dirs-1", "done", count=3, counters={"checked": 4}, failures=[("a", "bad")])
    assert UnitResult.fromdict(res.asdict()) == res


def test_embedded_state_and_thread_executor_satisfy_the_ports(tmp_path):
    state = EmbeddedJobState(tmp_path / "job")
    assert isinstance(state, JobState)
    assert isinstance(ThreadExecutor(lambda u: UnitResult(u.job, u.kind, u.key, "done")), Executor)
    state.add_key_row({"AccessionNumber": "A1", "PseudoPatientID": "X"})
    assert state.key_rows()[0]["PseudoPatientID"] == "X"
    assert stat.S_IMODE(os.stat(tmp_path / "job" / "key.csv").st_mode) == 0o600
    state.set_info(total=3)
    assert state.info() == {"total": 3}
    with state.claim("A1") as first, state.claim("A1") as second:
        assert first and not second
    state.close()


def test_collector_with_an_explicit_executor_runs_every_unit_once(tmp_path):
    pacs = MemoryPacs()
    for n in range(5):
        pacs.add(make_study(n))
    dest = MemoryArchive()
    collector = Collector()
    state = EmbeddedJobState(tmp_path)
    seen: list[str] = []

    def runner(unit: WorkUnit) -> UnitResult:
        seen.append(unit.key)
        assert "password" not in repr(unit.asdict())
        return collector.run_unit(WorkUnit.fromdict(unit.asdict()), pacs, dest, state)  # as if sent over the wire

    with ThreadExecutor(runner, workers=3) as executor:
        result = collector.run("p", [f"ACC{n:04}" for n in range(5)], pacs, None, dest, anonymize=True,
                               job_dir=tmp_path, executor=executor, state=state)
    assert result.ok and result.done == 5 and len(dest.stored) == 5
    assert sorted(seen) == [f"ACC{n:04}" for n in range(5)]
    assert state.counts() == {"done": 5}
    assert len(state.key_rows()) == 5


def test_worker_with_another_pseudonym_key_refuses_the_unit(tmp_path):
    from diana_core.pseudonym import Pseudonymizer

    pacs = MemoryPacs()
    pacs.add(make_study(0))
    unit = Collector(pseudonymizer=Pseudonymizer(key="a")).unit(
        "j", Collector().resolve(pacs.find({"AccessionNumber": "ACC0000"})[0], pacs), pacs, MemoryArchive(), True,
        False)
    res = Collector(pseudonymizer=Pseudonymizer(key="b")).run_unit(unit, pacs, MemoryArchive(),
                                                                   EmbeddedJobState(tmp_path))
    assert res.outcome == "failed" and "DIANA_PSEUDONYM_KEY" in (res.error or "")


def test_transfer_window_crossing_midnight():
    night = TransferWindow.parse("19:00-07:00")
    assert night.contains(datetime(2026, 1, 1, 23, 0)) and night.contains(datetime(2026, 1, 1, 6, 59))
    assert not night.contains(datetime(2026, 1, 1, 12, 0))
    assert night.seconds_until_open(datetime(2026, 1, 1, 18, 0)) == 3600
    with pytest.raises(ConfigError):
        TransferWindow.parse("7pm to 7am")
    with pytest.raises(ConfigError):
        Limits.from_mapping({"max_retrieves": 2})


def test_local_guard_caps_concurrency_and_holds_outside_the_window():
    guard = LocalGuard({"pacs": Limits(max_concurrent=2)}, poll=0.01)
    active, peak = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with guard.slot("pacs"):
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.02)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2

    clock = {"now": datetime(2026, 1, 1, 12, 0)}
    closed = LocalGuard({"pacs": Limits(window="19:00-07:00")}, poll=0.01, now=lambda: clock["now"])
    reasons: list[str] = []
    entered = threading.Event()

    def held() -> None:
        with closed.slot("pacs", on_hold=reasons.append):
            entered.set()

    t = threading.Thread(target=held)
    t.start()
    assert not entered.wait(0.2) and reasons == ["window"]
    clock["now"] = datetime(2026, 1, 1, 20, 0)
    assert entered.wait(2)
    t.join()


def test_local_guard_token_bucket_paces_units():
    guard = LocalGuard({"pacs": Limits(rate=20.0, burst=1)})
    start = time.monotonic()
    for _ in range(6):
        with guard.slot("pacs"):
            pass
    assert time.monotonic() - start >= 5 / 20 * 0.9


def test_index_units_over_an_executor_give_the_in_process_counts(tree, tmp_path):  # noqa: F811
    local = FileIndexer().index_path(tree["base"], SqliteRegistry(), reader=pydicom_reader)
    registry_path = str(tmp_path / "fanout.sqlite")
    indexer = FileIndexer()

    def runner(unit: WorkUnit) -> UnitResult:
        registry = resolve_registry(unit.services["registry"], {})
        return run_index_unit(indexer, unit, registry)

    with ThreadExecutor(runner, workers=2) as executor:
        fanned = index_with(indexer, executor, str(tree["base"]), SqliteRegistry(path=registry_path), "*.dcm",
                            "UNSTRUCTURED", None, "AccessionNumber", None)
    assert (fanned.checked, fanned.registered, fanned.bad_count) == (local.checked, local.registered, local.bad_count)
    assert FileIndexer.files_on_path(str(tree["base"]), SqliteRegistry(path=registry_path)) == 12
    assert "" in list(walk_dirs(str(tree["base"])))


def test_job_status_counts_rate_eta_and_workers_from_the_embedded_state(tmp_path):
    from diana_core.usecases.jobstatus import job_status

    state = EmbeddedJobState(tmp_path / "job")
    state.set_info(total=10, started=time.time() - 60, executor="local")
    for n in range(4):
        state.mark(f"A{n}", "done")
    state.mark("A9", "failed", error="NotFound: x")
    st = job_status(state)
    assert st.counts == {"done": 4, "failed": 1} and st.remaining == 5 and st.per_worker == {"local": 4}
    assert 3.5 < st.rate < 4.5  # 4 studies in the last minute
    assert st.eta is not None and 60 < st.eta < 90
    state.set_info(finished=time.time())
    assert job_status(state).eta is None
    state.close()


def test_upload_units_one_per_collection_add_up_like_an_in_process_upload(tree, tmp_path):  # noqa: F811
    from diana_core.embedded import MemoryEndpoint
    from diana_core.usecases.index_units import run_upload_unit, upload_with

    registry_path = str(tmp_path / "reg.sqlite")
    FileIndexer().index_path(tree["base"], SqliteRegistry(path=registry_path), reader=pydicom_reader)
    dest = MemoryEndpoint(name="dest")
    seen: list[str] = []

    def runner(unit: WorkUnit) -> UnitResult:
        seen.append(unit.item["collection"])
        return run_upload_unit(FileIndexer(), unit, resolve_registry(unit.services["registry"], {}), dest)

    with ThreadExecutor(runner, workers=2) as executor:
        result = upload_with(FileIndexer(), executor, str(tree["base"]), SqliteRegistry(path=registry_path), dest)
    assert sorted(seen) == ["ACC1", "ACC2", "ACC3"]
    assert (result.done, result.skipped, len(result.failed)) == (12, 0, 0) and len(dest) == 12


def test_jobs_status_command_reads_a_local_job_folder(tmp_path):
    import json

    from click.testing import CliRunner

    from diana_core.cli import cli

    state = EmbeddedJobState(tmp_path / "job")
    state.set_info(total=3, started=time.time() - 30, executor="local")
    state.mark("A1", "done")
    state.mark("A2", "sending")
    state.close()
    out = CliRunner().invoke(cli, ["jobs", "status", str(tmp_path / "job"), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["counts"] == {"done": 1, "sending": 1} and data["remaining"] == 2 and data["per_worker"] == {"local": 1}
    missing = CliRunner().invoke(cli, ["jobs", "status", str(tmp_path)])
    assert missing.exit_code != 0
