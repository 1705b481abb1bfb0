"""`diana collect` under faults, against real processes: a remote PACS (Orthanc) reached by C-FIND/C-MOVE through a
proxy Orthanc, delivering pseudonymized studies to a research Orthanc. Each test injects one fault (kill -9 at a
random point, a server restarted mid-job, a second run on the same job folder, a short C-MOVE, leftovers of an
interrupted attempt, a destination on the proxy) and then checks that every study arrived exactly once and whole,
with one key row per study, a consistent journal, and nothing identified left outside the 0700 job folder.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from diana_core.dicom import DicomLevel
from diana_core.pseudonym import Pseudonymizer
from diana_orthanc import Orthanc
from tests.faults.helpers import (
    ENV,
    Site,
    assert_collected_exactly_once,
    collect_cmd,
    journal_rows,
    kill9,
    seed,
    wait_for,
    write_worklist,
)

PER_STUDY = 3
STUDIES = 4
# the proxy drops the 2nd instance of every study it receives: C-MOVE answers success, one instance short
DROP_SECOND = ('function ReceivedInstanceFilter(dicom, origin, info)\n'
               '  return dicom.InstanceNumber ~= "2"\nend\n')
# the research Orthanc refuses the 3rd instance of every study it receives
REFUSE_THIRD = ('function ReceivedInstanceFilter(dicom, origin, info)\n'
                '  return dicom.InstanceNumber ~= "3"\nend\n')


@pytest.fixture(scope="module")
def originals(site: Site) -> list[dict[str, str]]:
    site.remote.reset()
    return seed(site.remote, STUDIES, PER_STUDY, run="faults-collect")


@pytest.fixture()
def job(site: Site, tmp_path: Path, originals) -> dict[str, Path]:
    """A clean research Orthanc and proxy, and this test's services file, worklist and job folder."""
    site.research.reset()
    site.proxy.reset()
    return {"services": site.services(tmp_path / "services.json"),
            "worklist": write_worklist(tmp_path / "worklist.csv", originals), "job": tmp_path / "job"}


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.mark.parametrize("seed_value", [1, 2, 3])
def test_kill_9_at_a_random_point_then_rerun_delivers_each_study_exactly_once(site, originals, job, seed_value):
    rng = random.Random(seed_value)
    cmd = collect_cmd(job["services"], job["worklist"], job["job"], "--pool", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    # kill once a random number of studies has started moving, a random few ms later (any step of a study)
    started = rng.randint(1, STUDIES)
    wait_for(lambda: proc.poll() is not None or sum(s in ("sending", "done") for _, s, *_ in journal_rows(job["job"]))
             >= started, what=f"{started} studies moving")
    threading.Event().wait(rng.uniform(0, 0.15))
    kill9(proc)
    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_collected_exactly_once(site, originals, PER_STUDY, job["job"])


def test_a_second_collect_on_the_same_job_folder_is_refused_with_the_pid_holding_it(site, originals, job):
    cmd = collect_cmd(job["services"], job["worklist"], job["job"], "--pool", "1")
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for(lambda: first.poll() is not None or journal_rows(job["job"]), what="the first run's journal")
        os.kill(first.pid, signal.SIGSTOP)  # hold the first run mid-job (it would finish before a 2nd starts)
        assert first.poll() is None, "the first run ended before the second started"
        second = run(cmd)
    finally:
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 1 and f"pid {first.pid}" in second.stderr, second.stderr[-2000:]
    assert_collected_exactly_once(site, originals, PER_STUDY, job["job"])


@pytest.mark.parametrize("node", ["research", "proxy", "remote"])
def test_a_server_restarted_mid_job_loses_and_duplicates_nothing(site, originals, job, node):
    cmd = collect_cmd(job["services"], job["worklist"], job["job"], "--pool", "2", "--retries", "3")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    wait_for(lambda: proc.poll() is not None or any(s == "sending" for _, s, *_ in journal_rows(job["job"])),
             what="a study moving")
    getattr(site, node).restart()
    _, err = proc.communicate(timeout=180)
    if proc.returncode != 0:  # a study can fail for good when every pass hit the outage: a rerun finishes it
        rerun = run(cmd)
        assert rerun.returncode == 0, err[-1500:] + rerun.stderr[-1500:]
    assert_collected_exactly_once(site, originals, PER_STUDY, job["job"])


def test_a_short_c_move_fails_with_the_counts_and_a_rerun_completes_it(site, originals, job):
    site.proxy.restart(lua=DROP_SECOND)
    try:
        short = run(collect_cmd(job["services"], job["worklist"], job["job"], "--retries", "1"))
    finally:
        site.proxy.restart()
    assert short.returncode == 1
    assert f"retrieved {PER_STUDY - 1} of the {PER_STUDY} instances" in short.stderr, short.stderr[-2000:]
    assert site.research.get("studies") == []  # nothing counted done, nothing short delivered
    assert {s for _, s, *_ in journal_rows(job["job"])} == {"failed"}
    rerun = run(collect_cmd(job["services"], job["worklist"], job["job"]))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_collected_exactly_once(site, originals, PER_STUDY, job["job"])


def test_a_partial_delivery_recorded_failed_is_replaced_on_the_rerun(site, originals, job):
    """A failed study with a dest id counts as in flight: its partial copy goes, then it is sent again whole."""
    site.research.restart(lua=REFUSE_THIRD)
    try:
        partial = run(collect_cmd(job["services"], job["worklist"], job["job"], "--retries", "0"))
    finally:
        site.research.restart()
    assert partial.returncode == 1
    held = [len(site.research.get(f"studies/{s}/instances")) for s in site.research.get("studies")]
    assert held and set(held) == {PER_STUDY - 1}  # really partial at the destination
    assert {s for _, s, *_ in journal_rows(job["job"])} == {"failed"}
    rerun = run(collect_cmd(job["services"], job["worklist"], job["job"]))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert_collected_exactly_once(site, originals, PER_STUDY, job["job"])


def test_a_partial_anonymized_copy_left_on_the_source_is_not_merged_into_the_next_attempt(site, originals, job):
    """An interrupted /anonymize leaves a partial copy under the predicted id; the next attempt removes it first."""
    proxy = Orthanc(name="proxy", **{k: v for k, v in site.proxy.desc().items() if k != "ctype"})
    tags = dict(originals[0])
    found = site.proxy.session().post(f"{site.proxy.url}/modalities/remote/query", timeout=30,
                                      json={"Level": "Study", "Query": {"StudyInstanceUID": tags["StudyInstanceUID"]}})
    qid = found.json()["ID"]
    site.proxy.session().post(f"{site.proxy.url}/queries/{qid}/answers/0/retrieve", data="LOCAL", timeout=60)
    [study] = proxy.find({"StudyInstanceUID": tags["StudyInstanceUID"]})
    pseudo = Pseudonymizer(key=ENV["DIANA_PSEUDONYM_KEY"])  # the CLI's key
    full = proxy.get(study, level=DicomLevel.STUDIES).tags
    leftover = proxy.anonymize(study, replacement_map=pseudo.replacement_map(full))
    assert leftover.oid() == pseudo.predicted_oid(full)
    proxy.delete(site.proxy.get(f"studies/{leftover.oid()}/instances")[0]["ID"], level=DicomLevel.INSTANCES)
    proxy.delete(study)  # what remains: 2 of 3 instances of an anonymized copy, as a kill -9 leaves it

    result = run(collect_cmd(job["services"], job["worklist"], job["job"]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert_collected_exactly_once(site, originals, PER_STUDY, job["job"])


def test_a_destination_on_the_proxy_is_refused_before_anything_moves(site, originals, job):
    cmd = collect_cmd(job["services"], job["worklist"], job["job"])
    cmd[cmd.index("research")] = "proxy"
    result = run(cmd)
    assert result.returncode == 1
    assert "same server" in result.stderr and "delete the delivered" in result.stderr, result.stderr[-2000:]
    assert site.proxy.get("studies") == [] and not journal_rows(job["job"])


def test_a_missing_worklist_is_an_error_not_zero_studies(site, job, tmp_path):
    result = run(collect_cmd(job["services"], tmp_path / "nope.csv", job["job"]))
    assert result.returncode == 1 and "nope.csv" in result.stderr and "is not a file" in result.stderr
