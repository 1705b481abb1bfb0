"""The contrib template plugin, really installed (its own distribution, a real entry point), then used."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is needed to install the template plugin (it is in the dev extra)"
    subprocess.run([uv, "pip", "install", "--python", sys.executable, "--target", str(target), "--no-deps",
                    "--no-build-isolation", "--offline", "-q", str(ROOT / "contrib" / "diana-jsondir")],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("DIANA_PLUGINS", None)
    return env


def diana(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "diana_core.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True)


def test_installed_plugin_is_discovered(installed):
    rows = json.loads(diana(installed, "--json", "plugins").stdout)
    row = next(r for r in rows if r["plugin"] == "jsondir")
    assert row["distribution"] == "diana-jsondir" and row["version"] == "0.1.0"
    assert row["ctypes"] == ["JsonDir"] and row["handlers"] == ["json_log"]


def test_plugin_ctype_works_from_a_service_file_and_cli(installed, tmp_path):
    store = tmp_path / "store"
    services = tmp_path / "services.yml"
    services.write_text(f"jd: {{ctype: JsonDir, path: {store}}}\n")
    code = (
        "from diana_core import load_services, Dixel\n"
        f"s = load_services({str(services)!r})['jd']\n"
        "print(s.put(Dixel(tags={'PatientID': 'P', 'StudyInstanceUID': '1.2'})))\n"
    )
    oid = subprocess.run([sys.executable, "-c", code], env=installed, capture_output=True, text=True,
                         check=True).stdout.strip()
    got = diana(installed, "-s", str(services), "--json", "get", "jd", oid)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["tags"]["StudyInstanceUID"] == "1.2"
    count = diana(installed, "jsondir-count", str(store))
    assert count.stdout.strip() == "1"


def test_without_the_plugin_the_ctype_is_unknown(tmp_path):
    services = tmp_path / "services.yml"
    services.write_text("jd: {ctype: JsonDir, path: x}\n")
    out = diana(dict(os.environ), "-s", str(services), "check", "jd")
    assert out.returncode == 1 and "unknown ctype 'JsonDir'" in out.stdout + out.stderr


def test_readme_walkthrough_copy_rename_install_route(tmp_path):
    """The template README's walk-through, step by step: copy, rename, install, list, route a file through it."""
    import re
    import time

    from pydicom.data import get_testdata_file

    readme = (ROOT / "contrib" / "diana-jsondir" / "README.md").read_text()
    sed_expr = re.search(r"sed -i '([^']+)'", readme).group(1)
    work = tmp_path / "diana-acme"
    shutil.copytree(ROOT / "contrib" / "diana-jsondir", work, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (work / "diana_jsondir").rename(work / "diana_acme")
    files = [work / "pyproject.toml", *(work / "diana_acme").glob("*.py"), *work.glob("*.yml")]
    subprocess.run(["sed", "-i", sed_expr, *map(str, files)], check=True)
    target = tmp_path / "site"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    subprocess.run([uv, "pip", "install", "--python", sys.executable, "--target", str(target), "--no-deps",
                    "--no-build-isolation", "--offline", "-q", str(work)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("DIANA_PLUGINS", None)

    rows = json.loads(diana(env, "--json", "plugins").stdout)
    row = next(r for r in rows if r["plugin"] == "acme")
    assert row["distribution"] == "diana-acme" and row["ctypes"] == ["AcmeDir"] and row["handlers"] == ["json_log"]

    (work / "incoming").mkdir()
    watch = subprocess.Popen([sys.executable, "-m", "diana_core.cli", "-s", "services.example.yml", "watch", "-R",
                              "routes.example.yml", "--max-seconds", "60"], cwd=work, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = work / "jsonstore" / "routed.jsonl"
    try:
        deadline = time.monotonic() + 45
        n = 0
        while not log.exists() and time.monotonic() < deadline:  # drop files until the watcher has started
            shutil.copy(get_testdata_file("CT_small.dcm"), work / "incoming" / f"ct{n}.dcm")
            n += 1
            time.sleep(1.0)
        assert log.exists(), watch.stderr.read() if watch.poll() is not None else "no routed.jsonl"
        stored = [p for p in (work / "jsonstore").glob("*.json")]
        deadline = time.monotonic() + 15
        while not stored and time.monotonic() < deadline:
            time.sleep(0.2)
            stored = [p for p in (work / "jsonstore").glob("*.json")]
    finally:
        watch.terminate()
        watch.wait(timeout=30)
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["id"].endswith(".dcm")  # a folder event carries the path: the summary is the id, no tags
    assert len(stored) == 1  # every copy of CT_small is the same instance: one JSON file
    assert json.loads(stored[0].read_text())["tags"]["SOPInstanceUID"]


def test_json_log_without_a_destination_is_a_permanent_config_error(installed, tmp_path):
    code = (
        "from diana_core import ConfigError\n"
        "from diana_jsondir.plugin import json_log\n"
        "try:\n    json_log('x', dest=None)\nexcept ConfigError as e:\n    print('config:', e)\n"
        f"print(json_log('x', dest=None, log={str(tmp_path / 'l.jsonl')!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=installed, capture_output=True, text=True, check=True)
    assert "config: json_log needs a JsonDir destination" in out.stdout
    assert (tmp_path / "l.jsonl").read_text().strip() == '{"id": "x"}'
