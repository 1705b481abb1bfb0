"""The contrib template plugin ships its own conformance test; it passes, run as a third party would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "contrib" / "diana-jsondir"


def test_the_template_plugin_passes_the_conformance_kit() -> None:
    env = {**os.environ, "PYTHONPATH": str(TEMPLATE)}
    run = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"], cwd=TEMPLATE,
                         env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "11 passed" in out, out[-2000:]  # all twelve contract checks but the declared one
