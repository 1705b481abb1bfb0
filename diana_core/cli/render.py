"""Rendering shared by long-running commands: the one progress implementation and summary tables (stderr).

On a terminal: a rich bar (done/total, status fields, rate, ETA). Off a terminal (daemons, CI, pipes): no bar, one
plain line every ``PLAIN_EVERY`` seconds and a last one at the end, so logs stay greppable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from diana_core.cli.context import stderr_console
from diana_core.cli.logs import stderr_is_tty

PLAIN_EVERY = 30.0
"""Seconds between plain progress lines off a terminal."""


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """Progress on stderr; yields ``advance(n=1, completed=None, total=None, **fields)`` (fields: status words)."""
    if not enabled:
        yield lambda n=1, completed=None, total=None, **fields: None
        return
    if not stderr_is_tty():
        with _plain_progress(description, total) as advance:
            yield advance
        return
    with _rich_progress(description, total) as advance:
        yield advance


@contextmanager
def _plain_progress(description: str, total: int | None) -> Iterator[Any]:
    state: dict[str, Any] = {"done": 0, "total": total, "fields": {}, "last": time.monotonic(), "start": time.monotonic()}

    def line() -> str:
        elapsed = time.monotonic() - state["start"]
        rate = state["done"] / elapsed * 60 if elapsed > 0 else 0.0
        of = f"/{state['total']}" if state["total"] is not None else ""
        fields = " ".join(f"{k} {v}" for k, v in state["fields"].items())
        return f"{description}: {state['done']}{of} {fields} {rate:.1f}/min {elapsed:.0f}s".replace("  ", " ")

    def advance(n: int = 1, completed: int | None = None, total: int | None = None, **fields: Any) -> None:
        state["done"] = completed if completed is not None else state["done"] + n
        if total is not None:
            state["total"] = total
        state["fields"].update(fields)
        if time.monotonic() - state["last"] >= PLAIN_EVERY:
            state["last"] = time.monotonic()
            print(line(), file=sys.stderr, flush=True)

    yield advance
    print(line(), file=sys.stderr, flush=True)


@contextmanager
def _rich_progress(description: str, total: int | None) -> Iterator[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per minute (studies/min for the collector), once rich has a speed estimate."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed * 60:.1f}/min" if speed else "-/min")

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=stderr_console(),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, completed: int | None = None, total: int | None = None, **fields: Any) -> None:
            status = " ".join(f"{k} {v}" for k, v in fields.items())
            kwargs: dict[str, Any] = {"status": status}
            if completed is not None:
                kwargs["completed"] = completed
            else:
                kwargs["advance"] = n
            if total is not None:
                kwargs["total"] = total
            progress.update(task, **kwargs)

        yield advance


def summary_table(title: str, rows: Mapping[str, Any]) -> None:
    """Print a two-column summary on stderr: a rich table on a terminal, ``key: value`` lines otherwise."""
    if not stderr_is_tty():
        print(title, file=sys.stderr)
        for key, value in rows.items():
            print(f"  {key}: {value}", file=sys.stderr)
        return
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(str(key), str(value))
    stderr_console().print(table)
