"""End to end: the FileIndexer with the real DcmDir reader, into Redis and SQLite, then uploads into a real Orthanc."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from diana_core import FileIndexer, load_services
from diana_core.cli.app import cli
from diana_core.embedded import SqliteRegistry
from diana_orthanc.testdata import write_small_ct

N_GENERATED = 12


def write_instance(path: Path, accession: str, n: int) -> None:
    write_small_ct(path, accession, n, patient_name="Doe^Jane",
                   study_uid=f"1.2.826.0.1.3680043.8.498.77.{sum(map(ord, accession))}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, dicom_testfiles) -> dict:
    """pydicom's own test files + generated studies + 3 bad files (garbage, empty, truncated DICOM)."""
    base = tmp_path_factory.mktemp("index-e2e") / "dicom"
    # real-world DICOM files no one here wrote, a deflated one (image_dfl.dcm) among them
    files = list(dicom_testfiles)
    assert any(Path(p).name == "image_dfl.dcm" for p in files)
    for path in files:
        dest = base / "pydicom" / (Path(path).stem + ".dcm")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    for i in range(N_GENERATED):
        write_instance(base / "gen" / f"ACC{i % 3}" / f"im{i}.dcm", f"ACC{i % 3}", i)
    (base / "bad").mkdir()
    (base / "bad" / "garbage.dcm").write_bytes(b"this is not DICOM" * 40)
    (base / "bad" / "empty.dcm").write_bytes(b"")
    whole = (base / "gen" / "ACC0" / "im0.dcm").read_bytes()
    (base / "bad" / "truncated.dcm").write_bytes(whole[:200])
    good = len(files) + N_GENERATED
    return {"base": base, "good": good, "bad": 3}


def test_index_into_sqlite_and_redis_reports_bad_files(folder, redis_clean):
    from diana_redis import Redis

    indexer = FileIndexer(pool_size=2, batch_size=7)
    results = {}
    for label, reg in (("sqlite", SqliteRegistry()), ("redis", Redis(host=redis_clean.host, port=redis_clean.port))):
        res = indexer.index_path(folder["base"], reg)
        results[label] = res
        assert (res.checked, res.registered, res.bad_count) == (folder["good"] + folder["bad"], folder["good"], 3)
        assert sorted(f for f, _ in res.bad) == ["bad/empty.dcm", "bad/garbage.dcm", "bad/truncated.dcm"]
        assert FileIndexer.files_on_path(str(folder["base"]), reg) == folder["good"]
        assert {"ACC0", "ACC1", "ACC2"} <= set(reg.collections(res.prefix))
        assert len(reg.collected_items("ACC1", res.prefix)) == N_GENERATED // 3
    assert results["sqlite"].prefix == results["redis"].prefix


def test_upload_to_orthanc_counts_on_the_server_and_skips_on_rerun(folder, clean_orthancs):
    local = clean_orthancs.local
    orthanc = load_services({"pacs": local.service_desc()})["pacs"]
    reg = SqliteRegistry()
    indexer = FileIndexer()
    indexer.index_path(folder["base"], reg)
    one = indexer.upload_collection("ACC2", folder["base"], reg, orthanc, workers=2)
    assert (one.done, one.skipped, one.failed) == (N_GENERATED // 3, 0, [])
    everything = indexer.upload_path(folder["base"], reg, orthanc, workers=4)
    assert everything.failed == [] and everything.done + everything.skipped == folder["good"]
    assert everything.skipped == N_GENERATED // 3  # ACC2 was already there (AlreadyStored)
    assert orthanc.statistics()["CountInstances"] == folder["good"]
    again = indexer.upload_path(folder["base"], reg, orthanc, check_exists=True)
    assert (again.done, again.skipped) == (0, folder["good"])


def test_cli_index_and_upload(folder, clean_orthancs, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    work = tmp_path / "copy"
    shutil.copytree(folder["base"], work)
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"pacs": clean_orthancs.local.service_desc()}))
    runner = CliRunner()
    res = runner.invoke(cli, ["index", str(work), "--json", "--pool", "2", "--quarantine", str(tmp_path / "q")])
    assert res.exit_code == 1, res.output  # bad files make the exit status non-zero
    summary = json.loads(res.stdout)
    assert (summary["registered"], summary["bad"], summary["quarantined"]) == (folder["good"], 3, 3)
    assert summary["registry"].startswith(str(tmp_path / "xdg" / "diana"))  # the user's data dir, not the tree
    assert not (work / "bad" / "empty.dcm").exists()
    res = runner.invoke(cli, ["-s", str(services), "upload", str(work), "default", "pacs", "--all", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["done"] == folder["good"]
    res = runner.invoke(cli, ["-s", str(services), "upload", str(work), "default", "pacs", "ACC1"])
    assert res.exit_code == 0 and f"skipped {N_GENERATED // 3}" in res.stdout
    # the user's audit trail (#26): index, upload --all and upload ACC1, chained, the collection id hashed
    trail = tmp_path / "state" / "diana" / "audit.jsonl"
    records = [json.loads(line) for line in trail.read_text().splitlines()]
    assert [(r["event"], r.get("command")) for r in records if r["event"] == "start"] == [
        ("start", "index"), ("start", "upload"), ("start", "upload")]
    finishes = [r["counts"] for r in records if r["event"] == "finish"]
    assert finishes[0]["registered"] == folder["good"] and finishes[1]["done"] == folder["good"]
    assert "ACC1" not in trail.read_text() and records[-2]["original"].startswith("id:")
    assert runner.invoke(cli, ["jobs", "audit", str(trail), "--verify"]).exit_code == 0


def test_default_registry_lives_in_the_user_data_dir_not_the_tree(folder, tmp_path, monkeypatch):
    """A scanned tree is often a read-only NAS share: `diana index` leaves it untouched and says where it wrote."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    work = tmp_path / "tree"
    shutil.copytree(folder["base"], work, ignore=shutil.ignore_patterns("bad"))
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    res = CliRunner().invoke(cli, ["index", str(work)])
    assert res.exit_code == 0, res.output
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before  # nothing written into the tree
    [registry] = (tmp_path / "data" / "diana").glob("index-*.sqlite")
    assert f"registry {registry}" in res.output
    # accession numbers -> paths: owner-only file and folder, whatever the umask (#26; the -wal follows the file)
    assert oct(registry.stat().st_mode & 0o777) == "0o600" and oct(registry.parent.stat().st_mode & 0o777) == "0o700"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(cli, ["--json", "index", str(work)])
    assert json.loads(res.stdout)["registry"].startswith(str(tmp_path / "home" / ".local" / "share" / "diana"))


def test_upload_to_orthanc_reads_files_in_the_workers_and_names_bad_ones(orthanc_local, tmp_path):
    """The FileUploader fast path: no header parse in the feeding thread; a non-DICOM file is a named failure."""
    from diana_core import FileIndexer
    from diana_orthanc import Orthanc
    from diana_orthanc.testdata import write_ct_instances

    paths = write_ct_instances(tmp_path / "files", 6, per_series=3, run="uploader")
    bad = tmp_path / "files" / "notes.dcm"
    bad.write_bytes(b"not dicom at all" * 10)
    orthanc = orthanc_local
    orthanc.reset()
    dest = Orthanc(host=orthanc.host, port=orthanc.http_port, user=orthanc.user, password=orthanc.password)

    def no_reader(path):
        raise AssertionError("the fast path must not parse headers")

    result = FileIndexer().upload_files([str(p) for p in [*paths, bad]], tmp_path, dest, workers=3, reader=no_reader)
    assert result.done == 6 and [f for f, _ in result.failed] == ["files/notes.dcm"]
    assert "rejected the file as DICOM" in result.failed[0][1]
    again = FileIndexer().upload_files([str(p) for p in paths], tmp_path, dest, workers=3)
    assert (again.done, again.skipped) == (0, 6)


def test_bad_file_names_are_hashed_on_the_console_unless_show_ids(tmp_path, monkeypatch):
    """A bad file's name often carries PHI (DOE_JANE_ACC123.dcm): the console shows its keyed hash and says how to
    see it; --show-ids shows the name; --json lists it for whoever asked for the machine-readable report (#26)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "DOE_JANE_ACC123.dcm").write_bytes(b"not DICOM at all" * 20)
    runner = CliRunner()
    res = runner.invoke(cli, ["index", str(tree)])
    assert res.exit_code == 1
    assert "DOE_JANE" not in res.output and "bad id:" in res.output and "--show-ids" in res.output
    res = runner.invoke(cli, ["--show-ids", "index", str(tree)])
    assert res.exit_code == 1 and "bad DOE_JANE_ACC123.dcm: not readable DICOM" in res.output
    res = runner.invoke(cli, ["--json", "index", str(tree)])
    assert json.loads(res.stdout)["bad_files"][0]["file"].endswith("DOE_JANE_ACC123.dcm")
