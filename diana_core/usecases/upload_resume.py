"""Resumable ``upload --all``: collections are sent in groups, and each group's fully sent collections are marked
in the registry itself, so a rerun after a crash (kill -9) skips them without reading their files again.

The marks live under their own prefix (``diana-upload:`` + the folder's prefix), one mark collection per
destination and mode, members ``"<collection>|<file count>"``: a rerun re-sends at most the group in flight.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from diana_core.ports import MemberRegistry, Progress

logger = logging.getLogger(__name__)

MARK_PREFIX = "diana-upload:"
CHECKPOINT_FILES = 1000


def marks_prefix(prefix: str) -> str:
    return f"{MARK_PREFIX}{prefix}"


def uploaded_collections(registry: Any, prefix: str, resume: str) -> dict[str, int]:
    """{collection: file count} of what earlier runs marked as fully sent under ``resume``."""
    marks: dict[str, int] = {}
    for member in registry.collected_items(resume, marks_prefix(prefix)):
        name, _, count = str(member).rpartition("|")
        if name:
            marks[name] = int(count) if count.isdigit() else 0
    return marks


def upload_resumable(indexer: Any, basepath: str | os.PathLike[str], registry: Any, dest: Any, resume: str,
                     names: Iterable[str], result: Any, checkpoint: int = CHECKPOINT_FILES, restart: bool = False,
                     progress: Progress | None = None, total: int | None = None, **kwargs: Any) -> Any:
    """Upload the collections ``names`` of basepath in groups of about ``checkpoint`` files into ``result`` (an
    empty ``UploadResult``), marking each group's collections that went through without a failure; collections
    marked by an earlier run are skipped unread (counted as skipped and as ``resumed``). ``restart`` ignores
    earlier marks."""
    can_mark = isinstance(registry, MemberRegistry)
    if not can_mark:  # nowhere to keep marks: a plain upload
        return indexer.upload_files(_members(registry, names, indexer.prefix_for_path(basepath)), basepath, dest,
                                    progress=progress, total=total, **kwargs)
    prefix = indexer.prefix_for_path(basepath)
    start = time.perf_counter()
    done_before = {} if restart else uploaded_collections(registry, prefix, resume)
    group: list[tuple[str, list[str]]] = []
    offset = 0

    def report(done: int, _total: int | None) -> None:
        if progress is not None:
            progress(offset + done, total)

    def send() -> None:
        nonlocal offset
        paths = [m for _, members in group for m in members]
        sent = indexer.upload_files(paths, basepath, dest, progress=report, **kwargs)
        failed = {name for name, _ in sent.failed}
        known = {m for _, members in group for m in members}
        # a failure that names no member (a backend labelling items its own way) leaves the whole group unmarked
        marks = [] if failed - known else [(resume, f"{name}|{len(members)}") for name, members in group
                                           if not failed.intersection(members)]
        if marks:
            registry.add_members(marks, marks_prefix(prefix))
        result.done += sent.done
        result.skipped += sent.skipped
        result.failed.extend(sent.failed)
        offset += len(paths)
        group.clear()

    for name in names:
        if name in done_before:
            result.skipped += done_before[name]
            result.resumed += done_before[name]
            offset += done_before[name]
            continue
        group.append((name, list(registry.collected_items(name, prefix))))
        if sum(len(m) for _, m in group) >= checkpoint:
            send()
    if group:
        send()
    result.elapsed = time.perf_counter() - start
    if result.resumed:
        logger.info("resumed: %d files of collections an earlier run uploaded were not read again", result.resumed)
    return result


def _members(registry: Any, names: Iterable[str], prefix: str) -> Iterable[str]:
    for name in names:
        yield from registry.collected_items(name, prefix)
