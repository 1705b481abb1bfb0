"""contrib/deploy systemd units: wait for the network, never restart-loop on a bad configuration (exit 2), run
sandboxed with only the data and job folders writable; ``systemd-analyze verify`` accepts them as shipped."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "contrib" / "deploy").glob("*.service"))
SHIPPED_DIANA = "/opt/diana/.venv/bin/diana"


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_waits_for_the_network_stops_on_exit_2_and_is_sandboxed(path):
    parsed = unit(path)
    assert "network-online.target" in parsed["Unit"]["Wants"].split()
    assert "network-online.target" in parsed["Unit"]["After"].split()
    service = parsed["Service"]
    assert service["RestartPreventExitStatus"].split() == ["2"] and service["Restart"] == "on-failure"
    assert service["ProtectSystem"] == "strict" and service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    writable = [p.lstrip("-") for p in service["ReadWritePaths"].split()]
    assert service["WorkingDirectory"] in writable  # job folders and the dead-letter file live there
    for arg in service["ExecStart"].split():
        if arg.startswith("/var/") or arg.startswith("/data"):
            assert any(arg.startswith(w) for w in writable), f"{arg} is written but not in ReadWritePaths"


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """As shipped, but ExecStart pointing at this checkout's diana (verify insists the binary exists)."""
    analyze = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    diana = str(Path(sys.executable).parent / "diana")
    for path in UNITS:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8").replace(SHIPPED_DIANA, diana))
    out = subprocess.run([analyze, "verify", *(str(tmp_path / p.name) for p in UNITS)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def test_a_bad_service_file_exits_2_so_systemd_does_not_restart_it(tmp_path):
    (tmp_path / "services.yml").write_text("inbox: {ctype: NoSuchCtype, path: x}\n")
    out = subprocess.run([sys.executable, "-m", "diana_core", "-s", "services.yml", "watch", "-r", "say", "inbox",
                          "-"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "unknown ctype 'NoSuchCtype'" in out.stderr, out.stderr
