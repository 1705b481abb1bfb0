"""``diana find`` names an unknown query key, prints ids (or a table, #15's --format); ``delete`` asks on a terminal, ``--yes``,
``--dry-run`` — against a real Orthanc through a service file (the terminal is a real pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from diana_core.cli import cli
from diana_orthanc.testdata import write_small_ct


def setup_pacs(clean_orthancs, tmp_path: Path) -> tuple[list[str], str]:
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"pacs": clean_orthancs.local.service_desc()}))
    s = ["-s", str(services)]
    files = [str(write_small_ct(tmp_path / "in" / f"{i}.dcm", "UXACC", i + 1) and tmp_path / "in" / f"{i}.dcm")
             for i in range(2)]
    assert CliRunner().invoke(cli, [*s, "put", "pacs", *files]).exit_code == 0
    out = CliRunner().invoke(cli, [*s, "find", "pacs", "AccessionNumber=UXACC", "--ids-only"])
    assert out.exit_code == 0
    return s, out.output.strip()


def test_unknown_query_key_is_named(clean_orthancs, tmp_path):
    s, _ = setup_pacs(clean_orthancs, tmp_path)
    out = CliRunner().invoke(cli, [*s, "find", "pacs", "AccesionNumber=UXACC"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "unknown query key 'AccesionNumber'" in out.output and "did you mean 'AccessionNumber'" in out.output
    assert "HTTP 500" not in out.output


def test_ids_only_and_table(clean_orthancs, tmp_path):
    s, oid = setup_pacs(clean_orthancs, tmp_path)
    assert len(oid.splitlines()) == 1 and len(oid) == 44  # one Orthanc study id, nothing else
    out = CliRunner().invoke(cli, [*s, "--json", "find", "pacs", "AccessionNumber=UXACC", "--ids-only"])
    assert json.loads(out.output) == [oid]
    table = CliRunner().invoke(cli, [*s, "find", "pacs", "AccessionNumber=UXACC", "--format", "table"])
    assert table.exit_code == 0
    header, row = table.output.strip().splitlines()[:2]
    assert header.split() == ["ID", "StudyDate", "ModalitiesInStudy", "StudyDescription", "AccessionNumber"]
    assert row.split()[0] == oid and row.split()[-1] == "UXACC"


def test_delete_dry_run_then_yes(clean_orthancs, tmp_path):
    s, oid = setup_pacs(clean_orthancs, tmp_path)
    out = CliRunner().invoke(cli, [*s, "delete", "pacs", oid, "nope", "--dry-run"])
    assert out.output.splitlines() == [f"{oid}: would be deleted", "nope: not there"]
    assert CliRunner().invoke(cli, [*s, "find", "pacs", "AccessionNumber=UXACC", "--ids-only"]).output.strip() == oid
    out = CliRunner().invoke(cli, [*s, "delete", "pacs", oid, "--yes"])
    assert out.output.strip() == f"{oid}: deleted"


def test_delete_asks_on_a_terminal(clean_orthancs, tmp_path):
    s, oid = setup_pacs(clean_orthancs, tmp_path)

    def on_tty(answer: bytes) -> tuple[int, str]:
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "diana_core.cli", *s, "delete", "pacs", oid],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        os.write(master, answer)
        out, err = proc.communicate(timeout=60)
        os.close(master)
        return proc.returncode, (out + err).decode()

    code, text = on_tty(b"n\n")
    assert code == 1 and "Delete 1 studies from pacs?" in text and "deleted" not in text
    find = [*s, "find", "pacs", "AccessionNumber=UXACC", "--ids-only"]
    assert CliRunner().invoke(cli, find).output.strip() == oid  # still there
    code, text = on_tty(b"y\n")
    assert code == 0 and f"{oid}: deleted" in text
    assert CliRunner().invoke(cli, find).output.strip() == ""
