"""``diana upload --all`` resumes (#32): collections an interrupted run sent are marked in the registry and a rerun
skips them without reading their files; a real Orthanc counts what arrived (each instance exactly once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from diana_core import FileIndexer, load_services
from diana_core.cli.app import cli
from diana_core.embedded import SqliteRegistry
from diana_core.usecases.upload_resume import uploaded_collections
from diana_orthanc.testdata import write_small_ct

STUDIES, PER_STUDY = 12, 3


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    base = tmp_path / "dicom"
    for s in range(STUDIES):
        for i in range(PER_STUDY):
            write_small_ct(base / f"s{s}" / f"im{i}.dcm", f"ACC{s:02d}", s * PER_STUDY + i, patient_name="Doe^Jane",
                           study_uid=f"1.2.826.0.1.3680043.8.498.78.{s + 1}")
    return base


class Crashing:
    """The real Orthanc endpoint, with the process "dying" (SystemExit) once ``limit`` files were handed to it."""

    def __init__(self, orthanc: Any, limit: int | None = None) -> None:
        self.orthanc, self.limit, self.paths = orthanc, limit, []

    def put_files(self, paths: Any, workers: int = 4, progress: Any = None) -> Any:
        paths = list(paths)
        if self.limit is not None and len(self.paths) + len(paths) > self.limit:
            raise SystemExit(137)
        self.paths.extend(paths)
        return self.orthanc.put_files(paths, workers=workers, progress=progress)


def test_a_rerun_after_a_crash_reads_only_what_was_not_sent(tree: Path, clean_orthancs: Any) -> None:
    orthanc = load_services({"pacs": clean_orthancs.local.service_desc()})["pacs"]
    reg, indexer = SqliteRegistry(), FileIndexer()
    indexer.index_path(tree, reg)
    total = STUDIES * PER_STUDY
    first = Crashing(orthanc, limit=total // 2)
    with pytest.raises(SystemExit):  # killed half way: groups of 6 files (2 studies) each, 3 groups went through
        indexer.upload_path(tree, reg, first, resume="pacs:original", checkpoint=6, workers=2)
    assert len(first.paths) == 18
    marked = uploaded_collections(reg, indexer.prefix_for_path(tree), "pacs:original")
    assert sum(marked.values()) == 18 and len(marked) == 6
    second = Crashing(orthanc)
    result = indexer.upload_path(tree, reg, second, resume="pacs:original", checkpoint=6, workers=2)
    assert len(second.paths) == total - 18  # nothing sent before was read again
    assert not set(second.paths) & set(first.paths)
    assert (result.done, result.skipped, result.resumed, result.failed) == (total - 18, 18, 18, [])
    assert orthanc.statistics()["CountInstances"] == total
    # restart ignores the marks: everything is read and sent again (Orthanc answers AlreadyStored)
    again = indexer.upload_path(tree, reg, Crashing(orthanc), resume="pacs:original", restart=True, workers=2)
    assert (again.done, again.skipped, again.resumed) == (0, total, 0)


def test_cli_upload_all_twice_skips_unread(tree: Path, clean_orthancs: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"pacs": clean_orthancs.local.service_desc()}))
    registry = str(tmp_path / "index.sqlite")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(tree), registry, "--json"]).exit_code == 0
    args = ["-s", str(services), "upload", str(tree), registry, "pacs", "--all", "--json"]
    first = json.loads(runner.invoke(cli, args).stdout)
    assert (first["done"], first["resumed"]) == (STUDIES * PER_STUDY, 0)
    second = json.loads(runner.invoke(cli, args).stdout)
    assert (second["done"], second["skipped"], second["resumed"]) == (0, STUDIES * PER_STUDY, STUDIES * PER_STUDY)
    third = json.loads(runner.invoke(cli, [*args, "--restart"]).stdout)
    assert (third["done"], third["skipped"], third["resumed"]) == (0, STUDIES * PER_STUDY, 0)  # read and sent again
