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
