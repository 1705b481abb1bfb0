"""Starting diana: ``python -m diana_core``, where the service file is found, shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def diana(*args: str, env: dict[str, str] | None = None, module: str = "diana_core") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "XDG_CONFIG_HOME")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), DIANA_PLUGINS="", **extra)
    return env


def write_services(path: Path, folder: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(f"here: {{ctype: SqliteRegistry, path: {folder / 'r.sqlite'}}}\n")
    return path


def test_python_dash_m_diana_core_is_the_diana_command(tmp_path):
    out = diana("--version", env=clean_env(tmp_path))
    assert out.returncode == 0 and out.stdout.startswith("diana, version ")
    assert "collect" in diana("--help", env=clean_env(tmp_path)).stdout


def test_service_file_precedence_default_then_env_then_option(tmp_path):
    default = write_services(tmp_path / "config" / "diana" / "services.yml", tmp_path / "d")
    env_file = write_services(tmp_path / "env.yml", tmp_path / "e")
    opt_file = write_services(tmp_path / "opt.yml", tmp_path / "o")
    env_file.write_text(env_file.read_text().replace("here:", "from_env:"))
    opt_file.write_text(opt_file.read_text().replace("here:", "from_option:"))

    # nothing named: the XDG default is read
    out = diana("--json", "check", env=clean_env(tmp_path))
    assert out.returncode == 0 and json.loads(out.stdout) == {"here": "ok"}, out.stderr
    # DIANA_SERVICES beats the default
    out = diana("--json", "check", env=clean_env(tmp_path, DIANA_SERVICES=str(env_file)))
    assert json.loads(out.stdout) == {"from_env": "ok"}, out.stderr
    # -s beats both
    out = diana("-s", str(opt_file), "--json", "check", env=clean_env(tmp_path, DIANA_SERVICES=str(env_file)))
    assert json.loads(out.stdout) == {"from_option": "ok"}, out.stderr
    # no default file: no services, and the error says how to name one
    default.unlink()
    out = diana("check", env=clean_env(tmp_path))
    assert out.returncode == 2 and "-s services.yml" in out.stderr


def test_bash_completion_script_and_completions(tmp_path):
    env = clean_env(tmp_path, _DIANA_COMPLETE="bash_source")
    script = subprocess.run([sys.executable, "-m", "diana_core"], capture_output=True, text=True, env=env)
    assert "complete " in script.stdout and "_DIANA_COMPLETE" in script.stdout
    env = clean_env(tmp_path, _DIANA_COMPLETE="bash_complete", COMP_WORDS="diana c", COMP_CWORD="1")
    words = subprocess.run([sys.executable, "-m", "diana_core"], capture_output=True, text=True, env=env).stdout
    assert {"plain,collect", "plain,check"} <= set(words.split())


def test_readme_everyday_block_makes_the_key_and_key_new_says_where_and_to_back_it_up(tmp_path):
    """The first collect needs a key: README's everyday block makes one first, and ``key new`` says where it is."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    everyday = readme[readme.index("## Everyday use"):readme.index("## Running it for days")]
    assert "diana key new" in everyday and everyday.index("diana key new") < everyday.index(" collect ")
    env = {k: v for k, v in os.environ.items() if k != "DIANA_PSEUDONYM_KEY"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    out = subprocess.run([sys.executable, "-m", "diana_core", "key", "new"], capture_output=True, text=True,
                         env=env, timeout=60)
    path = tmp_path / "cfg" / "diana" / "pseudonym.key"
    assert out.returncode == 0 and path.is_file() and str(path) in out.stdout, out.stdout + out.stderr
    assert "Back this file up" in out.stdout and "cannot be reproduced" in out.stdout
    assert path.read_text().strip() not in out.stdout  # the key itself is never printed
