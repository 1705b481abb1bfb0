"""Whether a process still runs (how leftovers of killed writers, pid-prefixed part files, are told from live ones),
and stopping a child process politely, then firmly."""

from __future__ import annotations

import os
import subprocess


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (also when it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(proc: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM a child if it still runs, SIGKILL it after ``timeout`` s, and reap it; None is a no-op."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
