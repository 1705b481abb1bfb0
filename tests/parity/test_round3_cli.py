"""#30 items 11-14 on the command line: ``diana guid`` prints the original CLI's IDs, ``diana find --accessions``
/ ``--today``, the original routes shortcuts refused in one line, ``diana do`` positional values."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from click.testing import CliRunner

from diana_core.cli import cli


def run(*args: str) -> dict:
    out = CliRunner().invoke(cli, ["--json", *args], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def original_cli_id(message: str) -> str:
    """The recipe (DESIGN.md §7) on the string the original CLI hashed: click.DateTime gave its mint a datetime,
    whose isoformat() carries the time ("1980-03-04T00:00:00")."""
    digest = hashlib.sha1(message.encode())
    ident = base64.b32encode(digest.digest()).decode()
    while not ident[:3].isalpha():
        digest = hashlib.sha1(digest.digest())
        ident = base64.b32encode(digest.digest()).decode()
    return ident


# (CLI arguments, the string the original CLI hashed, the ID it printed)
VECTORS = [
    (["MERCK^DEREK^L", "1980-03-04", "M"], "derek-l-merck|1980-03-04T00:00:00|M", "THOU7DATXE4BIGQVW45HEPJPJKL5YDM5"),
    (["Bar Z Foo", "2000-01-01", "F"], "bar-foo-z|2000-01-01T00:00:00|F", "GFYFUNDRUZMOBFILOLBMT332CPHE2NYO"),
    # age 10 at 2018-01-01: 3652.5 days before midnight is noon
    (["FOO^BAR^Z^^", "--age", "10", "--reference_date", "2018-01-01"], "bar-foo-z|2008-01-01T12:00:00|U",
     "TQG6OCH7TTGN3DXQPZSVXRF7IQIE2IJ3"),
    (["MERCK^DEREK^L", "--age", "30", "--reference_date", "2018-01-01"], "derek-l-merck|1988-01-01T12:00:00|U",
     "DNJHL4MPWD4MDP6S7JKO73ENYAD45BQR"),
]


@pytest.mark.parametrize(("args", "hashed", "expected"), VECTORS)
def test_guid_prints_the_original_clis_ids(args, hashed, expected):
    assert original_cli_id(hashed) == expected
    data = run("guid", *args, "--unkeyed")
    assert data["ID"] == expected and data["KeyID"] == "unkeyed"


def test_guid_date_only_gives_the_librarys_day_form_and_keyed_ids_stay_collects():
    day_form = run("guid", "MERCK^DEREK^L", "1980-03-04", "M", "--unkeyed", "--date-only")["ID"]
    assert day_form == original_cli_id("derek-l-merck|1980-03-04|M") != VECTORS[0][2]
    out = CliRunner().invoke(cli, ["guid", "MERCK^DEREK^L", "1980-03-04", "--date-only"])
    assert out.exit_code == 2 and "--unkeyed" in out.output


@pytest.fixture
def montage():
    """Montage cannot run here: FakeMontage (diana_montage.testing) is a local HTTP server speaking its API."""
    from datetime import date

    from diana_montage.testing import FakeMontage, make_reports

    reports = make_reports(6)
    reports[2]["accession_number"] = "ACC00001X"  # a full-text hit for "ACC00001" that is not that study
    today = date.today().isoformat()
    for report in reports[4:]:
        for event in report["events"]:
            event["date"] = f"{today}{event['date'][10:]}"
    fake = FakeMontage(reports=reports).start()
    yield json.dumps({"montage": fake.service_desc()})
    fake.stop()


def accessions_of(rows: list[dict]) -> list[str]:
    return [r["tags"]["AccessionNumber"] for r in rows]


def test_find_montage_with_an_accessions_file_and_today(montage, tmp_path):
    listing = tmp_path / "accessions.txt"
    listing.write_text("# study list\nACC00001\n\nACC00003\nACC00099\n")
    rows = run("-s", montage, "find", "montage", "--accessions", str(listing))
    assert accessions_of(rows) == ["ACC00001", "ACC00003"]  # exact matches only, in file order; no hit for 99
    assert accessions_of(run("-s", montage, "find", "montage", "-a", f"@{listing}")) == ["ACC00001", "ACC00003"]
    bare = tmp_path / "accessions"  # no extension: still one per line, the first one is not taken for a header
    bare.write_text("ACC00003\nACC00001\n")
    assert accessions_of(run("-s", montage, "find", "montage", "-a", str(bare))) == ["ACC00003", "ACC00001"]
    table = tmp_path / "worklist.csv"
    table.write_text("PatientID,AccessionNumber\nX,ACC00003\n")
    assert accessions_of(run("-s", montage, "find", "montage", "-a", str(table))) == ["ACC00003"]
    missing = CliRunner().invoke(cli, ["-s", montage, "find", "montage", "-a", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert sorted(accessions_of(run("-s", montage, "find", "montage", "--today"))) == ["ACC00004", "ACC00005"]
    assert accessions_of(run("-s", montage, "find", "montage", "StudyDate=20200102")) == ["ACC00001"]
    assert accessions_of(run("-s", montage, "find", "montage", "StudyDate=20200102-20200104")) == [
        "ACC00001", "ACC00001X", "ACC00003"]
    out = CliRunner().invoke(cli, ["-s", montage, "find", "montage", "--today", "StudyDate=20200101"])
    assert out.exit_code == 2 and "once" in out.output


def test_find_accessions_on_a_dicom_folder(tmp_path):
    from diana_orthanc.testdata import write_small_ct

    for n, acc in enumerate(("A1", "A2", "A3")):
        write_small_ct(tmp_path / "pacs" / f"{acc}.dcm", acc, n)
    listing = tmp_path / "list.txt"
    listing.write_text("A3\nA1\n")
    rows = run("find", str(tmp_path / "pacs"), "--accessions", str(listing), "-l", "instances")
    assert accessions_of(rows) == ["A3", "A1"]


@pytest.mark.parametrize(("route_source", "shown"), [
    ("path:/incoming", "write the folder itself: '/incoming'"),
    ("orthanc:", "name a service from the service file instead"),
])
def test_routes_file_with_the_originals_shortcuts_is_refused_in_one_line(tmp_path, monkeypatch, route_source,
                                                                         shown):
    monkeypatch.chdir(tmp_path)
    routes = tmp_path / "routes.yml"
    routes.write_text(f"- handler: upload_item\n  source: \"{route_source}\"\n  dest: {tmp_path / 'out'}\n")
    out = CliRunner().invoke(cli, ["watch", "-R", str(routes), "--max-seconds", "0.1"])
    assert out.exit_code == 2 and "Traceback" not in out.output
    said = [line for line in out.output.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("Error: ") and shown in said[0]
    assert list(tmp_path.iterdir()) == [routes]  # no folder named "path:" was made
    out = CliRunner().invoke(cli, ["watch", "-r", "upload_item", route_source, str(tmp_path / "out"),
                                   "--max-seconds", "0.1"])
    assert out.exit_code != 0 and shown in out.output


def test_do_parses_positional_mappings_like_k_values_and_refuses_bad_ones_in_one_line(tmp_path):
    from diana_orthanc.testdata import write_small_ct

    for n, acc in enumerate(("A1", "A2")):
        write_small_ct(tmp_path / "pacs" / f"{acc}.dcm", acc, n)
    pacs = str(tmp_path / "pacs")
    rows = run("do", pacs, "find", '{"AccessionNumber": "A2"}', "-k", "level=instances")
    assert [r["tags"]["AccessionNumber"] for r in rows] == ["A2"]
    assert run("do", pacs, "find", "{AccessionNumber: A1}", "-k", "level=instances")[0]["tags"]["AccessionNumber"] \
        == "A1"
    bad = CliRunner().invoke(cli, ["do", pacs, "find", '{"AccessionNumber": '])
    assert bad.exit_code == 2 and "argument 1 is not a valid JSON/YAML mapping" in bad.output
    assert "Traceback" not in bad.output
    wrong = CliRunner().invoke(cli, ["do", pacs, "check", "extra", "args"])
    assert wrong.exit_code == 2 and "check:" in wrong.output and "Traceback" not in wrong.output
    assert run("do", pacs, "exists", "00123") is False  # an id stays a string, not the number 123


def test_migrating_guide_states_what_the_code_does():
    """#30 item 14: the corrections in docs/migrating.md match the code they describe."""
    from pathlib import Path

    from diana_splunk import Splunk

    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "migrating.md").read_text(encoding="utf-8")
    splunk_row = next(line for line in guide.splitlines() if line.startswith("| `crud.endpoints.splunk.Splunk`"))
    assert Splunk().hec_protocol == "https" and Splunk().protocol == "https"
    assert "`hec_protocol`" in splunk_row and "the original used `http`" in splunk_row
    assert "hec_protocol: http" in (root / "plugins" / "splunk" / "README.md").read_text(encoding="utf-8")
    assert "`MyClass.register()`" in guide and "The key file moved" in guide and "`key.csv`" in guide
    assert "positional JSON/YAML mapping" in guide and "--date-only" in guide
