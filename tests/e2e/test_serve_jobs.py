"""``diana serve JOB``: a read-only page and /metrics over job folders, following a job as its journal changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from diana_core.usecases.jobfiles import KeyFile
from diana_core.usecases.journal import DONE, FAILED, Journal
from tests.e2e.test_status_page import CHROMIUM, FLAGS, free_port, get, wait_for


def test_serve_follows_a_job_folder_in_json_metrics_and_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "study42"
    journal = Journal(folder / "journal.sqlite")
    keys = KeyFile(folder / "key.csv")
    journal.mark("ACC1", DONE, dest_oid="o1", instances=12)
    keys.add({"AccessionNumber": "ACC1", "PseudoPatientID": "SHAM1", "PseudoAccessionNumber": "PSEUDO1"})
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_")}
    proc = subprocess.Popen([sys.executable, "-m", "diana_core", "serve", str(folder), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base + "/healthz")[0] == 200, "diana serve")
        job = json.loads(get(base + "/status.json")[1])["jobs"][0]
        assert job["job"] == "study42" and job["counts"] == {"done": 1} and job["instances"] == 12

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page()
                page.goto(base + "/")
                page.wait_for_selector("#job-study42 svg.chart rect.bar", timeout=30000)
                assert "state done" in page.text_content("#job-study42")
                journal.mark("ACC2", DONE, dest_oid="o2", instances=30)  # the job moves on
                journal.mark("ACC3", FAILED, error="EndpointUnavailable: pacs did not answer")
                page.wait_for_function(
                    "document.getElementById('job-study42').textContent.includes('EndpointUnavailable')",
                    timeout=30000)
                text = page.text_content("#job-study42")
                assert "ACC" not in text and "instances42" in text.replace(" ", "")
            finally:
                browser.close()
        metrics = get(base + "/metrics")[1].decode()
        assert 'diana_job_studies{diana_job="study42",state="done"} 2.0' in metrics
        assert 'diana_job_studies{diana_job="study42",state="failed"} 1.0' in metrics
        assert 'diana_job_instances{diana_job="study42"} 42.0' in metrics
    finally:
        journal.close()
        proc.terminate()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
