"""Start-up of the ``diana`` process: the cyclic garbage collector held off while modules load, frozen once the
command's work begins.

Start-up creates tens of thousands of objects that live as long as the process (modules, classes, functions, click
commands); with the default threshold the collector walks them about 60 times before the first upload (~10 ms CPU
here) and again in each full collection afterwards. ``hold_gc`` raises the threshold (a bounded hold, never a
disable: a command that never reaches ``settled`` still collects, only less often); ``settled`` moves what exists
to the permanent generation (``gc.freeze``) and restores the threshold. Only the console script and
``python -m diana_core[.cli]`` hold it: importing the CLI in a test process changes nothing.
"""

from __future__ import annotations

import gc

HELD_THRESHOLD = 200_000  # young-generation allocations between collections while held (default 700)

_saved: tuple[int, int, int] | None = None


def hold_gc() -> None:
    """Raise the collector's threshold until ``settled`` (idempotent)."""
    global _saved
    if _saved is None:
        _saved = gc.get_threshold()
        gc.set_threshold(HELD_THRESHOLD, *_saved[1:])


def settled() -> None:
    """Start-up is over: freeze what it built and collect as usual from now on (a no-op unless held).

    The frozen objects are never collected; the few cycles start-up left behind (~1,000 objects) stay with them.
    """
    global _saved
    if _saved is not None:
        gc.freeze()
        gc.set_threshold(*_saved)
        _saved = None


def held() -> bool:
    return _saved is not None
