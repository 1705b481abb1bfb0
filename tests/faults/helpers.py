"""Shared parts of the fault-injection suite: restartable real Orthancs, a real remote PACS behind a proxy, the
`diana` CLI as an OS process, and the checks run after every fault (what arrived, key file, journal, leftovers)."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from attrs import define, field

from diana_core.testing.waiting import wait_for  # noqa: F401  (the fault tests import it from here)
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import OrthancServer, free_port, new_credentials, start_orthanc

DIANA = [sys.executable, "-c", "from diana_core.cli import main; main()"]
ENV = {**os.environ, "DIANA_PSEUDONYM_KEY": "faults-suite-key"}


@define
class Node:
    """One real Orthanc that a test may restart on the same ports and storage (or with another Lua filter)."""

    workdir: Path
    name: str
    aet: str
    user: str
    password: str = field(repr=False)
    http_port: int = field(factory=free_port)
    dicom_port: int = field(factory=free_port)
    modalities: dict[str, Any] = field(factory=dict)
    server: OrthancServer | None = None

    def start(self, lua: str | None = None) -> Node:
        extra: dict[str, Any] = {}
        if lua:
            script = self.workdir / f"{self.name}-filter.lua"
            script.write_text(lua)
            extra["LuaScripts"] = [str(script)]
        self.server = start_orthanc(self.workdir, self.name, self.aet, self.modalities, user=self.user,
                                    password=self.password, http_port=self.http_port, dicom_port=self.dicom_port,
                                    extra_config=extra)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def restart(self, lua: str | None = None, crash: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``crash``: open connections drop mid-request) and start again."""
        if crash and self.server is not None and self.server.proc is not None:
            self.server.proc.kill()
            self.server.proc.wait()
        self.stop()
        self.start(lua)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def desc(self, **extra: Any) -> dict[str, Any]:
        return {"ctype": "Orthanc", "host": "127.0.0.1", "port": self.http_port, "user": self.user,
                "password": self.password, "aet": self.aet, **extra}

    def session(self) -> requests.Session:
        sess = requests.Session()
        sess.auth = (self.user, self.password)
        return sess

    def get(self, route: str) -> Any:
        with self.session() as sess:
            resp = sess.get(f"{self.url}/{route}", timeout=30)
            resp.raise_for_status()
            return resp.json()

    def reset(self) -> None:
        assert self.server is not None
        self.server.reset()

    def instances(self) -> list[dict[str, Any]]:
        """Every instance's resource (main tags) with its study's id and the study's patient/main tags added."""
        out = []
        for study in self.get("studies?expand"):
            for inst in self.get(f"studies/{study['ID']}/instances"):
                out.append({**inst, "ParentStudy": study["ID"], "Study": study})
        return out


@define
class Site:
    """A remote PACS, the hospital's proxy Orthanc (C-FIND/C-MOVE between them) and a research Orthanc."""

    remote: Node
    proxy: Node
    research: Node

    def services(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "hospital": {"ctype": "ProxiedDicom", "proxy_desc": self.proxy.desc(), "proxy_domain": "remote"},
            "research": self.research.desc(),
            "proxy": self.proxy.desc(),
        }))
        return path

    def stop(self) -> None:
        for node in (self.proxy, self.remote, self.research):
            if node.server is not None and node.server.proc is not None:
                node.server.proc.terminate()
        for node in (self.proxy, self.remote, self.research):
            node.stop()


def start_site(workdir: Path) -> Site:
    user, password = new_credentials()
    remote = Node(workdir, "remote", "REMOTE", user, password)
    proxy = Node(workdir, "proxy", "LOCAL", user, password)
    remote.modalities = {"local": ("LOCAL", "127.0.0.1", proxy.dicom_port)}
    proxy.modalities = {"remote": ("REMOTE", "127.0.0.1", remote.dicom_port)}
    research = Node(workdir, "research", "RESEARCH", user, password)
    return Site(remote.start(), proxy.start(), research.start())


def seed(node: Node, studies: int, per_study: int, run: str) -> list[dict[str, str]]:
    """Store ``studies`` studies of ``per_study`` instances (one patient each); their original main tags."""
    with node.session() as sess:
        for s in range(studies):
            for i in range(per_study):
                sess.post(f"{node.url}/instances", data=ct_bytes(i, study=s, patient=s + 1, run=run),
                          timeout=30).raise_for_status()
    originals = []
    for oid in node.get("studies"):
        meta = node.get(f"studies/{oid}")
        originals.append({**meta["PatientMainDicomTags"], **meta["MainDicomTags"]})
    return sorted(originals, key=lambda t: t["AccessionNumber"])


def write_worklist(path: Path, originals: list[dict[str, str]]) -> Path:
    path.write_text("AccessionNumber\n" + "".join(t["AccessionNumber"] + "\n" for t in originals))
    return path


def collect_cmd(services: Path, worklist: Path, job: Path, *extra: str) -> list[str]:
    return [*DIANA, "-s", str(services), "collect", str(worklist), "hospital", "research", "--job-dir", str(job),
            "--retry-delay", "0.5", *extra]


def journal_rows(job: Path) -> list[tuple[str, str, str | None, int]]:
    """(key, status, dest_oid, instances) of every journal row; [] while the journal is being created."""
    path = job / "journal.sqlite"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT key, status, dest_oid, instances FROM items ORDER BY key").fetchall()
    except sqlite3.OperationalError:
        return []


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_collected_exactly_once(site: Site, originals: list[dict[str, str]], per_study: int, job: Path) -> None:
    """After any fault and a rerun: each study at the destination once and whole, the key file with one row per
    study, the journal done and agreeing with the destination, nothing identified left outside the job folder."""
    instances = site.research.instances()
    per_study_count = Counter(i["ParentStudy"] for i in instances)
    sops = [i["MainDicomTags"]["SOPInstanceUID"] for i in instances]
    assert len(per_study_count) == len(originals), f"{len(per_study_count)} studies for {len(originals)}"
    assert set(per_study_count.values()) == {per_study}, f"instances per study: {dict(per_study_count)}"
    assert len(sops) == len(set(sops)) == len(originals) * per_study
    numbers = Counter((i["ParentStudy"], i["MainDicomTags"].get("InstanceNumber")) for i in instances)
    assert max(numbers.values()) == 1, "an instance arrived twice under two SOP UIDs"

    rows = list(csv.DictReader(open(job / "key.csv", encoding="utf-8")))
    assert sorted(r["AccessionNumber"] for r in rows) == sorted(t["AccessionNumber"] for t in originals)
    assert {r["DestOID"] for r in rows} == set(per_study_count)

    journal = journal_rows(job)
    assert {k for k, *_ in journal} == {t["AccessionNumber"] for t in originals}
    assert {s for _, s, *_ in journal} == {"done"}, journal
    assert {d for _, _, d, _ in journal} == set(per_study_count)
    assert all(n in (0, per_study) for *_, n in journal)  # a study found whole at the dest is skipped with 0

    left = site.proxy.get("studies?expand")
    assert left == [], f"the proxy keeps retrieved or anonymized copies: {left}"
    assert not (job / "tmp").exists() or not any((job / "tmp").rglob("*")), "study archives left in JOB/tmp"
    assert (job.stat().st_mode & 0o077) == 0, "the job folder must be private (0700)"
    text = json.dumps(instances)
    for tags in originals:
        for key in ("PatientID", "PatientName", "AccessionNumber", "StudyInstanceUID"):
            assert tags[key] not in text, f"original {key} reached the research Orthanc"
