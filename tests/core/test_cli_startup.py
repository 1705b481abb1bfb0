"""Start-up of the ``diana`` process (#27): the cyclic GC is held while the CLI loads and frozen once the command's
work begins (the first file of ``index``/``upload``, or as soon as any other command is chosen), so no command runs
on with the hold; importing the CLI (tests, library users) leaves the collector alone."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

DEFAULT = gc.get_threshold()
REPORT = ("import atexit, gc, json, sys\n"
          "atexit.register(lambda: print('GC:' + json.dumps([gc.get_threshold(), gc.get_freeze_count()]), "
          "file=sys.stderr))\n"
          "sys.argv = ['diana', *sys.argv[1:]]\n"
          "from diana_core.cli import main\n"
          "main()\n")


def _diana(*argv: str, cwd: Path) -> tuple[subprocess.CompletedProcess, list]:
    proc = subprocess.run([sys.executable, "-c", REPORT, *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("GC:"))
    return proc, json.loads(line[3:])


def test_upload_ends_the_hold_after_its_first_file_and_freezes_the_start_up(tmp_path):
    from pydicom.data import get_testdata_file

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.dcm", "b.dcm"):
        (src / name).write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    proc, _ = _diana("index", str(src), str(tmp_path / "reg.sqlite"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc, (threshold, frozen) = _diana("--json", "upload", str(src), str(tmp_path / "reg.sqlite"),
                                       str(tmp_path / "dest"), "--all", "--workers", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["done"] + json.loads(proc.stdout)["skipped"] == 2
    assert list(tmp_path.joinpath("dest").rglob("*.dcm"))
    assert tuple(threshold) == DEFAULT and frozen > 10_000  # the hold ended; start-up's objects frozen


def test_any_other_command_ends_the_hold_when_chosen(tmp_path):
    proc, (threshold, frozen) = _diana("guid", "DOE^JOHN", "--unkeyed", "--age", "30", "--reference-date", "2018-01-01",
                                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tuple(threshold) == DEFAULT and frozen > 1_000


def test_importing_the_cli_leaves_the_collector_alone():
    from diana_core.cli import cli
    from diana_core.cli.startup import held

    before = gc.get_freeze_count()
    result = CliRunner().invoke(cli, ["guid", "DOE^JOHN", "--unkeyed", "--age", "30", "--reference-date", "2018-01-01"])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == DEFAULT and gc.get_freeze_count() == before and not held()
