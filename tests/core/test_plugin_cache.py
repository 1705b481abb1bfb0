"""The ``diana`` command remembers the installed entry points between runs (#27 start-up): a cache keyed on the
``sys.path`` folders' times, so installing, removing or upgrading a plugin distribution is seen on the next run.

Plugins here are real distributions: ``*.dist-info`` folders in a throwaway site folder on ``sys.path``.
"""

import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from diana_core import plugin_cache
from diana_core.plugins import load_plugins

GROUPS = ("diana", "diana.ctypes")


def _install(site: Path, version: str, name: str = "acme-cached") -> Path:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[diana]\n{name} = acme_cached\n[diana.ctypes]\nCached = acme_cached\n")
    return info


def _settle(site: Path, seconds_ago: float) -> None:
    """Date the site folder and what it holds in the past, as an install minutes ago left them."""
    when = time.time() - seconds_ago
    for path in [*site.rglob("*"), site]:
        os.utime(path, (when, when))


def _versions(scan: plugin_cache.EntryPointScan) -> dict[str, str]:
    return {ep.name: scan(ep)[1] for ep in scan.select("diana") if ep.name.startswith("acme")}


@pytest.fixture
def cached_site(tmp_path, monkeypatch):
    """Only the throwaway site folder and the standard library on sys.path; the cache on, in tmp_path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *(p for p in sys.path if p.startswith(sys.base_prefix))])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(plugin_cache, "_enabled", True)
    return site


def test_the_cache_answers_without_reading_metadata_until_a_distribution_changes(cached_site, monkeypatch):
    site = cached_site
    _install(site, "1.0")
    _settle(site, 600)
    assert _versions(plugin_cache.scan(GROUPS)) == {"acme-cached": "1.0"}
    written = json.loads(plugin_cache.cache_path().read_text())
    assert ["diana.ctypes", "Cached", "acme_cached", "acme-cached", "1.0"] in written["records"]

    real = metadata.entry_points

    def no_scan():
        raise AssertionError("metadata scanned although nothing changed")

    monkeypatch.setattr(metadata, "entry_points", no_scan)
    hit = plugin_cache.scan(GROUPS)  # nothing changed: from the cache
    assert _versions(hit) == {"acme-cached": "1.0"} and [ep.name for ep in hit.select("diana.ctypes")] == ["Cached"]

    # upgrade: pip removes the old dist-info and writes the new one
    (site / "acme_cached-1.0.dist-info" / "METADATA").unlink()
    (site / "acme_cached-1.0.dist-info" / "entry_points.txt").unlink()
    (site / "acme_cached-1.0.dist-info").rmdir()
    _install(site, "2.0")
    _settle(site, 300)
    with pytest.raises(AssertionError, match="metadata scanned"):
        plugin_cache.scan(GROUPS)  # the folder changed: the cache is not trusted
    monkeypatch.setattr(metadata, "entry_points", real)
    assert _versions(plugin_cache.scan(GROUPS)) == {"acme-cached": "2.0"}

    # install another one, then remove both
    _install(site, "0.3", name="acme-second")
    _settle(site, 200)
    assert _versions(plugin_cache.scan(GROUPS)) == {"acme-cached": "2.0", "acme-second": "0.3"}
    for info in site.glob("*.dist-info"):
        for f in info.iterdir():
            f.unlink()
        info.rmdir()
    _settle(site, 100)
    assert _versions(plugin_cache.scan(GROUPS)) == {}


def test_metadata_rewritten_in_place_is_seen(cached_site):
    """Some development installs rewrite an egg-info's files in place: the folder's time stays, the file's changes."""
    info = _install(cached_site, "1.0")
    _settle(cached_site, 600)
    assert [ep.name for ep in plugin_cache.scan(GROUPS).select("diana.ctypes")] == ["Cached"]
    assert plugin_cache.cache_path().exists()
    with (info / "entry_points.txt").open("a") as fh:
        fh.write("Another = acme_cached\n")
    when = time.time() - 300
    os.utime(info / "entry_points.txt", (when, when))
    assert [ep.name for ep in plugin_cache.scan(GROUPS).select("diana.ctypes")] == ["Cached", "Another"]


def test_a_folder_changed_just_now_is_not_cached(cached_site):
    _install(cached_site, "1.0")  # the folder's time is now: an install in this clock tick could go unseen
    assert _versions(plugin_cache.scan(GROUPS)) == {"acme-cached": "1.0"}
    assert not plugin_cache.cache_path().exists()


def test_load_plugins_reports_the_upgraded_version(cached_site):
    _install(cached_site, "1.0")
    _settle(cached_site, 600)
    assert load_plugins(lazy=True).infos["acme-cached"].version == "1.0"
    assert load_plugins(lazy=True).infos["acme-cached"].version == "1.0"  # from the cache
    for f in (cached_site / "acme_cached-1.0.dist-info").iterdir():
        f.unlink()
    (cached_site / "acme_cached-1.0.dist-info").rmdir()
    _install(cached_site, "1.1")
    _settle(cached_site, 300)
    info = load_plugins(lazy=True).infos["acme-cached"]
    assert (info.version, info.ctypes, info.loaded) == ("1.1", ["Cached"], False)


def test_diana_plugins_sees_an_installed_then_removed_plugin(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(site), "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def listed() -> dict[str, str]:
        proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "--json", "plugins"], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return {r["plugin"]: r["version"] for r in json.loads(proc.stdout)}

    _settle(site, 600)
    _settle(tmp_path, 600)  # the working folder is on sys.path too (python -m)
    first = listed()
    assert "acme-cached" not in first and "orthanc" in first
    assert listed() == first
    info = _install(site, "1.0")
    _settle(site, 300)
    assert listed()["acme-cached"] == "1.0"
    for f in info.iterdir():
        f.unlink()
    info.rmdir()
    _settle(site, 100)
    assert "acme-cached" not in listed()
