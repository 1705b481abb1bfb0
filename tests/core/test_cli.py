"""The diana CLI: global options, id commands, generic item commands, one-line errors."""

import json
import subprocess
import sys

from click.testing import CliRunner

from diana_core.cli import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_and_version():
    out = run("--help")
    assert out.exit_code == 0 and "diana demo" in out.output and "guid" in out.output
    assert "0.1.0" in run("--version").output


def test_guid_text_and_json():
    out = run("guid", "MERCK^DEREK^L", "--age", "30", "--reference-date", "2018-01-01")
    assert out.exit_code == 0 and "ID: " in out.output and "Name: " in out.output and "KeyID: k-" in out.output
    # --unkeyed --date-only: the original DIANA library's algorithm, value for value (--unkeyed alone: its CLI's)
    data = json.loads(run("--json", "guid", "Bar Z Foo", "--dob", "2000-01-01", "--unkeyed", "--date-only").output)
    assert data["ID"] == "WHLOKMAGICLQGYKC3ZQLLMFKMOX3ZAP2" and data["Name"] == "WAGENAAR^HERIBERTO^L"
    assert data["BirthDate"] == "1999-10-08" and data["KeyID"] == "unkeyed"


def test_guid_and_uid_use_the_key_collect_uses(monkeypatch, tmp_path):
    from diana_core.pseudonym import Pseudonymizer

    tags = {"PatientName": "BAR^Z^FOO", "PatientID": "1", "PatientBirthDate": "20000101", "PatientSex": "U",
            "StudyInstanceUID": "1.2.3"}
    data = json.loads(run("--json", "guid", "BAR^Z^FOO", "--dob", "2000-01-01").output)
    assert data["ID"] == Pseudonymizer().identity(tags).ID != "WHLOKMAGICLQGYKC3ZQLLMFKMOX3ZAP2"
    keyed = json.loads(run("--json", "uid", "--keyed", "P", "1.2.3").output)["uid"]
    assert keyed == Pseudonymizer().remap_uid("1.2.3")
    # no key anywhere: refused, unless --unkeyed
    monkeypatch.delenv("DIANA_PSEUDONYM_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    out = CliRunner().invoke(cli, ["guid", "BAR^Z^FOO", "--dob", "2000-01-01"])
    assert out.exit_code == 1 and "diana key new" in out.output
    out = CliRunner().invoke(cli, ["uid", "--keyed", "P", "1.2.3"])
    assert out.exit_code == 1 and "no pseudonym key" in out.output
    assert run("uid", "--keyed", "--unkeyed", "P", "1.2.3").exit_code == 0


def test_key_new_writes_a_private_key_and_collect_uses_it(monkeypatch, tmp_path):
    import os
    import stat

    from diana_core.pseudonym import Pseudonymizer, key_id

    monkeypatch.delenv("DIANA_PSEUDONYM_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert CliRunner().invoke(cli, ["key", "show"]).exit_code == 1
    made = json.loads(run("--json", "key", "new").output)
    path = tmp_path / "cfg" / "diana" / "pseudonym.key"
    assert made["path"] == str(path) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    key = path.read_text().strip()
    assert len(key) >= 40 and made["key_id"] == key_id(key) and key not in json.dumps(made)
    assert json.loads(run("--json", "key", "show").output)["key_id"] == made["key_id"]
    assert Pseudonymizer().key_id == made["key_id"]  # what collect, watch, guid and uid pick up
    again = CliRunner().invoke(cli, ["key", "new"])
    assert again.exit_code == 1 and "already exists" in again.output and path.read_text().strip() == key


def test_guid_without_birth_information_fails_cleanly():
    out = CliRunner().invoke(cli, ["guid", "DOE^JANE"])
    assert out.exit_code == 1
    assert out.output.strip().startswith("Error:") and "Traceback" not in out.output


def test_uid_and_oid():
    from diana_core.dicom import DicomUIDMint, orthanc_id

    assert run("uid", "P", "S", "SE").output.strip() == DicomUIDMint().uid("P", "S", "SE")
    assert run("oid", "P", "S").output.strip() == orthanc_id("P", "S")
    assert json.loads(run("--json", "uid", "--keyed", "P", "S").output)["uid"].startswith("2.25.")


def test_generic_put_get_find_delete_over_a_service_file(tmp_path):
    reg = tmp_path / "reg.sqlite"
    services = tmp_path / "s.yml"
    services.write_text(f"reg: {{ctype: SqliteRegistry, path: {reg}}}\nmem: {{ctype: MemoryEndpoint}}\n")
    assert json.loads(run("-s", str(services), "--json", "check", "reg").output) == {"reg": "ok"}
    out = CliRunner().invoke(cli, ["-s", str(services), "put", "reg", str(services)])
    assert out.exit_code == 1 and "does not support put" in out.output
    out = CliRunner().invoke(cli, ["-s", str(services), "get", "nope", "x"])
    assert out.exit_code == 1 and "no service named 'nope'" in out.output


def test_verbose_shows_tracebacks():
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "-v", "guid", "X"], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ValidationError" in proc.stderr


def test_plugins_lists_core_ctypes_as_json():
    rows = json.loads(run("--json", "plugins").output)
    core = next(r for r in rows if r["plugin"] == "core")
    assert "SqliteRegistry" in core["ctypes"] and core["version"]
