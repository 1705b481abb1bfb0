"""The installed ``diana*`` entry points, remembered between runs: scanning every distribution's metadata on
``sys.path`` costs ~10 ms of each command's start-up (120 distributions here), reading one small JSON file ~0.5 ms.

The cache is keyed on the modification times of every ``sys.path`` folder: installing, removing or upgrading a
distribution adds or removes a ``*.dist-info`` folder there, which changes its folder's time, so the next run scans
again (and on those of the found distributions' ``entry_points.txt`` and ``METADATA``, rewritten in place by some
development installs). A folder changed within the last few seconds is not trusted (file times tick coarsely: an install in the same
tick as our look would leave the time unchanged), so nothing is cached then. The cache lives in
``$XDG_CACHE_HOME/diana`` (default ``~/.cache/diana``), one file per Python environment; it holds entry point and
distribution names only. Any problem reading or writing it means a scan, never an error. Only the ``diana``
process turns it on (``enable``): a program or test that imports Diana scans as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = 1
RACY_SECONDS = 3.0  # a sys.path folder changed this recently may change again within the same clock tick

_enabled = False

# (group, entry point name, value, distribution name or None, version or None)
Record = tuple[str, str, str, str | None, str | None]


class EntryPointScan:
    """Entry points of the given groups and their distributions' (name, version), from the cache or the metadata."""

    def __init__(self, records: list[Record], eps: list[Any] | None = None) -> None:
        self.records = records
        if eps is None:  # from the cache: made again from their names
            eps = [metadata.EntryPoint(name=name, value=value, group=group) for group, name, value, _, _ in records]
        self._by_group = [(record[0], ep) for record, ep in zip(records, eps, strict=True)]
        self._facts = {id(ep): (d, ver) for ep, (_, _, _, d, ver) in zip(eps, records, strict=True)}

    def select(self, group: str) -> list[Any]:
        return [ep for g, ep in self._by_group if g == group]

    def __call__(self, ep: Any, missing: str = "") -> tuple[str, str]:
        """(distribution name, version) of one of these entry points; ``missing`` for both without a distribution."""
        dist, version = self._facts.get(id(ep), (None, None))
        return (missing, missing) if dist is None else (dist, version or missing)


def enable(on: bool = True) -> None:
    """Use the cache in this process (the ``diana`` command does)."""
    global _enabled
    _enabled = on


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    env = hashlib.sha256(sys.prefix.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(base) / "diana" / f"entry-points-{env}.json"


def fingerprint() -> list[Any] | None:
    """[path, mtime_ns] of every sys.path entry (None when one changed too recently to be trusted)."""
    return _times(entry or os.getcwd() for entry in sys.path)


def _times(paths: Any) -> list[Any] | None:
    now = time.time_ns()
    out: list[Any] = []
    for path in paths:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = None
        if mtime is not None and now - mtime < RACY_SECONDS * 1e9:
            return None
        out.append([path, mtime])
    return out


def scan(groups: tuple[str, ...]) -> EntryPointScan:
    """The entry points of ``groups``: cached (when enabled) while nothing on sys.path changed since written."""
    if not _enabled:
        records, eps, _ = _from_metadata(groups)
        return EntryPointScan(records, eps)
    key = fingerprint()
    path = cache_path()
    if key is not None:
        cached = _read(path, key, groups)
        if cached is not None:
            return EntryPointScan(cached)
    records, eps, files = _from_metadata(groups)
    # the metadata files of the distributions found, too: an install in place (an egg-info rewritten in a source
    # folder) changes a file, not its folder
    times = _times(files)
    if key is not None and times is not None:
        _write(path, {"format": FORMAT, "groups": list(groups), "key": key, "files": times, "records": records})
    return EntryPointScan(records, eps)


def _from_metadata(groups: tuple[str, ...]) -> tuple[list[Record], list[Any], list[str]]:
    """(records, the entry point objects, the metadata files of their distributions)."""
    everything = metadata.entry_points()
    seen: dict[int, tuple[Any, tuple[str | None, str | None]]] = {}
    records: list[Record] = []
    eps: list[Any] = []
    files: list[str] = []
    for group in groups:
        for ep in everything.select(group=group):
            dist = ep.dist
            if dist is None:
                facts: tuple[str | None, str | None] = (None, None)
            else:  # each .name / .version re-reads and re-parses METADATA: once per distribution
                known = seen.get(id(dist))
                if known is None or known[0] is not dist:
                    meta = dist.metadata
                    known = seen[id(dist)] = (dist, (meta["Name"], meta["Version"]))
                    folder = getattr(dist, "_path", None)  # PathDistribution's *.dist-info / *.egg-info folder
                    if folder is not None:
                        files += [os.path.join(folder, "entry_points.txt"), os.path.join(folder, "METADATA")]
                facts = known[1]
            records.append((group, ep.name, ep.value, *facts))
            eps.append(ep)
    return records, eps, files


def _read(path: Path, key: list[Any], groups: tuple[str, ...]) -> list[Record] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("key") != key or data.get("groups") != list(groups):
            return None
        if _times(name for name, _ in data["files"]) != data["files"]:
            return None
        return [(str(g), str(n), str(v), d, ver) for g, n, v, d, ver in data["records"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _write(path: Path, data: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-points-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
