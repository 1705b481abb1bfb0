"""The alias-only harness: the original DIANA's module names mapped onto ours, nothing else (no shims, no code).

``install(monkeypatch)`` puts ``diana``, ``diana.daemons.file_indexer``, ``diana.utils.guid`` ... into
``sys.modules`` for one test, so the original's import lines run unchanged against this project.
"""

from __future__ import annotations

import importlib
import sys
import types

ALIASES = {  # parents first
    "diana.utils": "diana_core",
    "diana.utils.endpoint": "diana_core",
    "diana.dixel": "diana_core.dixel",
    "diana.utils.guid": "diana_core.guid",
    "diana.utils.dicom": "diana_core.dicom",
    "diana.daemons.file_indexer": "diana_core.usecases.file_indexer",
    "diana.daemons.collector": "diana_core.usecases.collector",
}


def install(monkeypatch) -> None:
    """Alias the original's module names (and their parent packages) for the current test."""
    for old, new in ALIASES.items():
        module = importlib.import_module(new)
        parts = old.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent not in sys.modules:
                monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
        monkeypatch.setitem(sys.modules, old, module)
        monkeypatch.setattr(sys.modules[".".join(parts[:-1])], parts[-1], module, raising=False)
