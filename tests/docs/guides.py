"""Run a guide page as written: its ``bash`` and ``python`` blocks in order, in one empty folder, each block checked
against the ``text`` block that follows it (every non-empty line of the text must appear in the block's output, in
order; "…" stands for anything). ``<!-- docs-test: exit=N -->`` (or ``exit=any``) before the text block sets the
expected exit status of the block above it (default 0)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from attrs import define

_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_EXIT = re.compile(r"<!--\s*docs-test:\s*exit=(\w+)\s*-->")


@define
class Block:
    lang: str
    code: str
    line: int
    expect: list[str]
    exit: str = "0"


def blocks(markdown: str) -> list[Block]:
    """The runnable blocks of a page, each with the text block and exit annotation that follow it."""
    found: list[Block] = []
    pos = 0
    for m in _FENCE.finditer(markdown):
        between = markdown[pos:m.start()]
        pos = m.end()
        lang, body = m.group(1), m.group(2)
        if found and (ann := _EXIT.search(between)) and not _FENCE.search(between):
            found[-1].exit = ann.group(1)
        if lang in ("bash", "python"):
            found.append(Block(lang, body, markdown.count("\n", 0, m.start()) + 1, []))
        elif lang == "text" and found and not found[-1].expect and between.strip().replace(
                _EXIT.search(between).group(0) if _EXIT.search(between) else "", "").strip() == "":
            found[-1].expect = [ln.strip() for ln in body.splitlines() if ln.strip()]
    return found


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def check_output(block: Block, output: str, page: str) -> None:
    text = _squash(output)
    at = 0
    for line in block.expect:
        for part in (p.strip() for p in _squash(line).split("…")):
            if not part:
                continue
            found = text.find(part, at)
            assert found >= 0, (f"{page}:{block.line}: expected {part!r} (from {line!r}) in the output "
                                f"after position {at}:\n{output}")
            at = found + len(part)


def run_page(page: Path, workdir: Path, env: dict[str, str], timeout: float = 120) -> int:
    """Run every block of ``page`` in ``workdir``; returns how many ran. AssertionError names the page and line."""
    ran = 0
    for block in blocks(page.read_text()):
        argv = (["bash", "-euo", "pipefail", "-c", block.code] if block.lang == "bash"
                else [sys.executable, "-c", block.code])
        proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
        output = proc.stdout + proc.stderr
        if block.exit != "any":
            assert proc.returncode == int(block.exit), (
                f"{page.name}:{block.line}: exit {proc.returncode}, expected {block.exit}:\n{block.code}\n{output}")
        check_output(block, output, page.name)
        ran += 1
    return ran
