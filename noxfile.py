"""Nox sessions: lint, types, architecture, tests (all plugins, and each plugin alone), bench, demo."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "types", "architecture", "tests"]
PLUGINS = sorted(p.name for p in Path("plugins").iterdir() if (p / "pyproject.toml").exists())
DEV = list(nox.project.dependency_groups(nox.project.load_toml("pyproject.toml"), "dev"))  # PEP 735 group
ALL = ["-e", ".", *DEV, *[arg for p in PLUGINS for arg in ("-e", f"plugins/{p}")]]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy on the core and every plugin."""
    session.install(*ALL)
    session.run("mypy", "diana_core", *[str(p) for p in sorted(Path("plugins").glob("*/diana_*"))])


@nox.session
def architecture(session: nox.Session) -> None:
    """import-linter: the core imports no backend library and no plugin."""
    session.install(*ALL)
    session.run("lint-imports", "--no-cache")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test, with every plugin installed and real Orthanc/Redis (install them with ./dev test first)."""
    session.install(*ALL)
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugin_alone(session: nox.Session, plugin: str) -> None:
    """One plugin installed with only the core (and what it declares): its own tests pass."""
    needs_orthanc = plugin in {"proxied", "mock"}
    extra = ["-e", "plugins/orthanc[test]"] if needs_orthanc or plugin == "orthanc" else []
    session.install("-e", ".", *DEV, *extra, "-e", f"plugins/{plugin}")
    # the repo conftest loads every plugin's fixtures; here only those of what is installed
    fixtures = [f"diana_{p}.testing" for p in ("orthanc", "redis")
                if p == plugin or (p == "orthanc" and needs_orthanc)]
    args = [arg for module in fixtures for arg in ("-p", module)]
    session.run("pytest", "--confcutdir", f"plugins/{plugin}", *args, f"plugins/{plugin}/tests", "-p", "no:cacheprovider",
                *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: each prints its same-run baseline and the ratio."""
    session.install(*ALL)
    for script in sorted(Path("benchmarks").glob("bench_*.py")):
        session.run("python", str(script))


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on embedded defaults."""
    session.install(*ALL)
    session.run("diana", "demo", *session.posargs)
