"""The generic item commands (put, find, get, delete, check) against a real Orthanc, through a service file."""

from __future__ import annotations

import json
import zipfile

from click.testing import CliRunner

from diana_core.cli import cli
from diana_orthanc.testdata import write_small_ct


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_put_find_get_zip_delete_over_orthanc(clean_orthancs, tmp_path, monkeypatch):
    local = clean_orthancs.local
    desc = {**local.service_desc(), "password": "${PACS_PASSWORD}"}
    monkeypatch.setenv("PACS_PASSWORD", local.password)
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"pacs": desc}))
    s = ["-s", str(services)]
    files = [write_small_ct(tmp_path / "in" / f"{i}.dcm", "CLIACC", i + 1) and str(tmp_path / "in" / f"{i}.dcm")
             for i in range(3)]

    assert run(*s, "check", "pacs") == (0, "pacs: ok\n")
    code, out = run(*s, "put", "pacs", *files)
    assert code == 0 and "put 3, skipped 0, failed 0" in out
    code, out = run(*s, "put", "pacs", str(tmp_path / "in"))  # a folder: every file in it, already there
    assert code == 0 and "put 0, skipped 3" in out

    code, out = run(*s, "--json", "find", "pacs", "AccessionNumber=CLIACC")
    [study] = json.loads(out)
    oid = study["meta"]["ID"]
    code, out = run(*s, "get", "pacs", oid, "--view", "file", "-o", str(tmp_path / "out"))
    assert code == 0
    with zipfile.ZipFile(tmp_path / "out" / f"{oid}.zip") as archive:
        assert len([n for n in archive.namelist() if not n.endswith("/")]) == 3

    assert run(*s, "delete", "pacs", oid)[1].strip() == f"{oid}: deleted"
    code, out = run(*s, "get", "pacs", oid)
    assert code == 1 and "not found" in out and local.password not in out
