"""Every distribution is publishable: licence, readme, classifiers, URLs, py.typed, one version, honest extras."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
DIST_DIRS = [ROOT, *PLUGIN_DIRS]
FIX = (
    "copy plugins/redis/LICENSE, README.md and the [project] metadata block (license, license-files, readme, "
    "classifiers, [project.urls]) of plugins/redis/pyproject.toml, and add an empty py.typed to the package"
)


def project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def packages(folder: Path) -> list[Path]:
    data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    return [folder / p for p in data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]]


def core_version() -> str:
    text = (ROOT / "diana_core" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


@pytest.mark.parametrize("folder", DIST_DIRS, ids=lambda p: p.name)
def test_distribution_metadata_is_complete(folder):
    meta = project(folder)
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"], FIX
    assert (folder / "LICENSE").read_text() == (ROOT / "LICENSE").read_text(), FIX
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert (folder / meta["readme"]).stat().st_size > 100, FIX
    assert "Typing :: Typed" in meta["classifiers"] and "Programming Language :: Python :: 3.11" in meta["classifiers"]
    assert meta["urls"] and all(u.startswith("https://") for u in meta["urls"].values()), FIX
    for package in packages(folder):
        assert (package / "py.typed").exists(), f"{package.name}: {FIX}"


def test_one_version_source_and_plugins_move_in_lockstep():
    """The core's version lives only in diana_core/__init__.py; each plugin's equals it and its core range admits it."""
    root = project(ROOT)
    assert "version" not in root and root["dynamic"] == ["version"]
    version = core_version()
    major, minor = (int(x) for x in version.split(".")[:2])
    for folder in PLUGIN_DIRS:
        meta = project(folder)
        assert meta["version"] == version, f"{meta['name']} {meta['version']} != core {version}"
        core_dep = next(d for d in meta["dependencies"] if d.startswith("diana-dicom>") or d.startswith("diana-dicom "))
        assert f">={major}.{minor}" in core_dep and f"<{major}.{minor + 1}" in core_dep, core_dep


@pytest.mark.parametrize("module", sorted((ROOT / "plugins").glob("*/diana_*/testing.py")), ids=lambda p: p.parts[-3])
def test_testing_helpers_that_import_pytest_sit_behind_a_testing_extra(module):
    if not re.search(r"^import pytest|^from pytest", module.read_text(encoding="utf-8"), re.M):
        return  # stdlib-only helpers (e.g. the Montage fake) need no extra
    extras = project(module.parents[1]).get("optional-dependencies", {})
    assert any(d.startswith("pytest") for d in extras.get("testing", [])), (
        f"{module.parent.name}.testing imports pytest: declare it in a 'testing' extra"
    )


def test_uv_lock_is_committed_and_names_every_distribution():
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    for folder in DIST_DIRS:
        assert f'name = "{project(folder)["name"]}"' in lock, f"uv.lock lacks {project(folder)['name']}: run uv lock"


def test_plugins_use_only_the_documented_cli_surface():
    """Plugins import ``diana_core.cli.plugin_api`` (state, progress, render), never the CLI's internals."""
    import ast

    offenders = []
    for path in [*(ROOT / "plugins").glob("*/diana_*/**/*.py"), *(ROOT / "contrib").glob("*/diana_*/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.startswith("diana_core.cli.") and n != "diana_core.cli.plugin_api"]
    assert not offenders, offenders


def test_dev_tools_are_a_dependency_group_not_a_published_extra():
    """PEP 735: pytest, mypy, playwright... live in [dependency-groups] dev; ./dev demo syncs without that group."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "dev" not in data["project"].get("optional-dependencies", {}), "dev tools must not be a published extra"
    group = " ".join(data["dependency-groups"]["dev"])
    assert all(tool in group for tool in ("pytest", "mypy", "ruff", "playwright", "import-linter")), group
    dev_script = (ROOT / "dev").read_text(encoding="utf-8")
    runtime = dev_script[dev_script.index("setup_runtime() {"):].split("\n}\n")[0]
    assert "--no-dev" in runtime and "--group dev" not in runtime, runtime
    assert 'UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"' in dev_script  # the system's CA store, as pip uses


REPO = "https://github.com/diana-dicom/diana"


@pytest.mark.parametrize("folder", DIST_DIRS, ids=lambda p: p.name)
def test_urls_point_at_this_project_with_authors_and_maintainers(folder):
    meta = project(folder)
    urls = meta["urls"]
    assert urls["Source"] == REPO and urls["Issues"] == f"{REPO}/issues", urls
    assert urls["Changelog"] == f"{REPO}/blob/main/CHANGELOG.md" and urls["Security"] == f"{REPO}/blob/main/SECURITY.md"
    assert meta["authors"][0]["name"] and meta["maintainers"][0]["name"]
    assert REPO in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")  # the docs site names the same repository


def test_security_policy_says_how_to_report_privately_and_the_changelog_exists():
    policy = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    assert f"{REPO}/security/advisories/new" in policy and "Never include patient data" in policy
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_dev_bump_sets_one_version_on_the_core_and_every_plugin(tmp_path):
    """``tools/bump_version.py`` (what ``./dev bump`` runs) on a copy of the tree: every version and every range
    between our distributions moves to the new series; the lock-step test above holds for the result."""
    import shutil
    import subprocess
    import sys

    for rel in ["pyproject.toml", "diana_core/__init__.py", *(str(p.relative_to(ROOT)) for p in
                                                              [*ROOT.glob("plugins/*/pyproject.toml"),
                                                               *ROOT.glob("contrib/*/pyproject.toml")])]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    bump = [sys.executable, str(ROOT / "tools" / "bump_version.py"), "--root", str(tmp_path)]
    out = subprocess.run([*bump, "1.4.0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f"{len(list(ROOT.glob('plugins/*/pyproject.toml')))} plugins at 1.4.0" in out.stdout, out.stdout + out.stderr
    text = (tmp_path / "diana_core" / "__init__.py").read_text()
    assert '__version__ = "1.4.0"' in text
    for folder in [tmp_path, *sorted(p.parent for p in tmp_path.glob("plugins/*/pyproject.toml"))]:
        raw = (folder / "pyproject.toml").read_text()
        meta = project(folder)
        if folder != tmp_path:
            assert meta["version"] == "1.4.0", folder.name
        ours = re.findall(r"diana-dicom[a-z\[\],-]*(>=[\d.]+,<[\d.]+)", raw)
        assert ours and set(ours) == {">=1.4,<1.5"}, (folder.name, ours)
    template = (tmp_path / "contrib" / "diana-jsondir" / "pyproject.toml").read_text()
    assert 'diana-dicom>=1.4,<1.5' in template and 'version = "0.1.0"' in template  # its own version stays
    bad = subprocess.run([*bump, "1.4"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "is not X.Y.Z" in bad.stderr and "Traceback" not in bad.stderr
