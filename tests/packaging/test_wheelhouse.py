"""What a new user runs: ``pip install --find-links WHEELHOUSE "diana-dicom[orthanc,dcmdir]"`` in a clean venv.

Our distributions are built into a temporary wheelhouse (``uv build``); third-party dependencies come from the package
registry through uv's cache (``uv pip install``, pip's resolution rules, seconds instead of pip's minute). The installed ``diana`` then collects a CSV worklist into a folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert found, "uv is in the dev extra"
    return found


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [uv(), "build", "-q", "--no-build-isolation", "--python", sys.executable, "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    for plugin in ("orthanc", "dcmdir", "csv"):
        subprocess.run(
            [
                uv(),
                "build",
                "-q",
                "--no-build-isolation",
                "--python",
                sys.executable,
                "--wheel",
                "-o",
                str(out),
                str(ROOT / "plugins" / plugin),
            ],
            check=True,
            capture_output=True,
        )
    return out


def test_core_sdist_carries_only_the_core(wheelhouse):
    (sdist,) = wheelhouse.glob("diana_dicom-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tops = {Path(name).parts[1] for name in tar.getnames() if len(Path(name).parts) > 1}
    assert "diana_core" in tops and {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= tops
    assert not tops & {"plugins", "tests", "benchmarks", "contrib", "uv.lock", ".ci", "dev"}, tops


def test_pip_install_from_the_wheelhouse_runs_collect(wheelhouse, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py, diana = env_dir / "bin" / "python", env_dir / "bin" / "diana"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DIANA_PLUGINS")}
    # uv's pip interface (same resolution as pip, but served from the uv cache: seconds, not a minute)
    pip = subprocess.run(
        [
            uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(py),
            "--find-links",
            str(wheelhouse),
            "diana-dicom[orthanc,dcmdir]",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    licence = subprocess.run(
        [
            str(py),
            "-c",
            "from importlib.metadata import metadata as m; "
            "print(m('diana-dicom')['License-Expression'], m('diana-dicom-orthanc')['Version'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert licence.stdout.split() == ["MIT", "0.1.0"]
    plugins = json.loads(
        subprocess.run([str(diana), "--json", "plugins"], env=env, capture_output=True, text=True, check=True).stdout
    )
    names = {row["plugin"]: row for row in plugins}
    assert {"orthanc", "dcmdir"} <= set(names) and not any(row["error"] for row in plugins)
    assert names["orthanc"]["distribution"] == "diana-dicom-orthanc"
    # the pytest fixtures stay out of a runtime install: importing them asks for the 'testing' extra's pytest
    probe = subprocess.run([str(py), "-c", "import diana_orthanc.testing"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "pytest" in probe.stderr

    # a folder "PACS" with two real studies (pydicom's own test files, given accession numbers)
    pacs, research = tmp_path / "pacs", tmp_path / "research"
    make = (
        "import sys, pydicom\nfrom pydicom.data import get_testdata_file\n"
        "for n, acc in (('CT_small.dcm', 'ACC1'), ('MR_small.dcm', 'ACC2')):\n"
        "    ds = pydicom.dcmread(get_testdata_file(n)); ds.AccessionNumber = acc\n"
        "    ds.save_as(sys.argv[1] + '/' + acc + '.dcm')\n"
    )
    pacs.mkdir()
    subprocess.run([str(py), "-c", make, str(pacs)], env=env, check=True)
    worklist = tmp_path / "worklist.csv"
    with worklist.open("w", newline="") as fh:
        csv.writer(fh).writerows([["AccessionNumber"], ["ACC1"], ["ACC2"]])
    run = subprocess.run(
        [str(diana), "--json", "collect", str(worklist), str(pacs), str(research), "--job-dir", str(tmp_path / "job")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["studies"] == 2 and summary["done"] == 2 and summary["failed"] == 0
    written = [p for p in research.rglob("*") if p.is_file()]
    assert len(written) == 2 and all("ACC" not in p.name for p in written)
