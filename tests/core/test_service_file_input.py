"""Service files with bad bytes or bad syntax: one ConfigError naming file, line and column, never a line's text."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from diana_core import load_services
from diana_core.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_yaml_syntax_error_gives_position_not_the_password_line(tmp_path):
    f = tmp_path / "services.yml"
    f.write_text("pacs:\n  ctype: Orthanc\n  password: hunter2: s3cret\n  host: pacs\n")
    with pytest.raises(ConfigError) as err:
        load_services(f)
    message = str(err.value)
    assert "services.yml" in message and "line 3, column 20" in message
    assert "hunter2" not in message and "s3cret" not in message and "password" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained PyYAML snippet either


def test_cli_prints_one_line_without_the_secret(tmp_path):
    from diana_core.cli import cli

    f = tmp_path / "services.yml"
    f.write_text('pacs: {ctype: Orthanc, password: "hunter2\n')
    out = CliRunner().invoke(cli, ["-s", str(f), "check"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "services.yml" in out.output and "line" in out.output and "hunter2" not in out.output
    verbose = CliRunner().invoke(cli, ["-v", "-s", str(f), "check"])
    assert "hunter2" not in verbose.output  # not even the -v traceback quotes it


def test_json_error_names_line_and_column(tmp_path):
    f = tmp_path / "services.json"
    f.write_text('{"pacs": {"ctype": "Orthanc", "password": "hunter2",}}')
    with pytest.raises(ConfigError, match=r"services\.json.*not valid JSON.*line 1, column 53") as err:
        load_services(f)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("data, expected", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary file"),
    (b"pacs:\n  ctype: Orthanc\n  host: h\xf4te\n", r"not UTF-8 text \(line 3, column 10\)"),
    (b"\xff\xfe" + "pacs: {}\n".encode("utf-16-le"), "binary file"),
])
def test_binary_or_non_utf8_service_file(tmp_path, data, expected):
    f = tmp_path / "services.yml"
    f.write_bytes(data)
    with pytest.raises(ConfigError, match=rf"services\.yml.*{expected}"):
        load_services(f)


def test_huge_service_file_is_refused_unread(tmp_path):
    f = tmp_path / "services.yml"
    with f.open("wb") as out:
        out.truncate(1 << 30)  # sparse: 1 GiB of nothing
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        load_services(f)


def test_readme_service_example_works_as_printed(monkeypatch, tmp_path):
    """The YAML block of the README parses and every service in it builds."""
    block = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    f = tmp_path / "services.yml"
    f.write_text(block.group(1))
    for var in set(re.findall(r"\$\{(\w+)\}", block.group(1))):
        monkeypatch.setenv(var, "not-a-real-password")
    services = load_services(f)
    assert set(services) == {"pacs", "hospital", "research", "archive", "registry"}
    for name in services:
        assert services[name].name == name
