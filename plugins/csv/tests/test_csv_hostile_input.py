"""Worklists with bad or hostile bytes: one ConfigError naming file, row and the fix, in bounded time and memory."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from diana_core.errors import ConfigError
from diana_core.usecases.collector import read_worklist
from diana_csv import CsvFile


def write(tmp_path: Path, data: bytes, name: str = "w.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_latin1_bytes_name_file_row_and_the_fix(tmp_path: Path) -> None:
    fp = write(tmp_path, "AccessionNumber,StudyDescription\nA1,CT\nA2,Thorax séance\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        list(CsvFile(fp=fp))
    message = str(err.value)
    assert "w.csv" in message and "row 3" in message and "not UTF-8" in message and "CSV UTF-8" in message
    assert "séance" not in message  # the cell's content (possibly PHI) is not echoed


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 64
    for name, data in (("zip.csv", b"PK\x03\x04" + garbage), ("nul.csv", b"AccessionNumber\nA1\x00\x00\x00\n")):
        fp = write(tmp_path, data, name)
        with pytest.raises(ConfigError, match=rf"{name}.*row \d+") as err:
            list(CsvFile(fp=fp))
        assert "Traceback" not in str(err.value)


def test_field_over_the_limit_and_unbalanced_quote(tmp_path: Path) -> None:
    long_row = b"AccessionNumber,Note\nA1," + b"x" * 200_000 + b"\n"
    with pytest.raises(ConfigError, match=r"row 2: line 2 is longer than 131072 bytes.*right file"):
        list(CsvFile(fp=write(tmp_path, long_row, "long.csv")))
    # a quoted field that never closes grows line by line: the record is capped, the quote is named
    unbalanced = b'AccessionNumber,Note\nA1,"never closed\n' + b"more text\n" * 200_000
    with pytest.raises(ConfigError, match=r"row 2.*(double quote|field limit)"):
        list(CsvFile(fp=write(tmp_path, unbalanced, "quote.csv")))
    # a smaller configured cap applies to fields that fit in one line too
    with pytest.raises(ConfigError, match="longer than 1000 bytes"):
        list(CsvFile(fp=write(tmp_path, b"AccessionNumber\n" + b"7" * 2000 + b"\n", "cap.csv"), max_field_size=1000))


def test_collector_worklist_reports_the_file_and_row(tmp_path: Path) -> None:
    fp = write(tmp_path, b"AccessionNumber\nA1\nA\xe92\n", "accessions.csv")
    with pytest.raises(ConfigError, match=r"accessions\.csv.*row 3.*not UTF-8"):
        read_worklist(fp)


def test_cli_collect_prints_one_line(tmp_path: Path) -> None:
    from diana_core.cli import cli

    fp = write(tmp_path, b"AccessionNumber\nA1\nA\xe92\n", "accessions.csv")
    out = CliRunner().invoke(cli, ["collect", fp, str(tmp_path / "src"), str(tmp_path / "dst")])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "accessions.csv" in out.output and "row 3" in out.output


def test_one_gigabyte_line_fails_fast_in_bounded_memory(tmp_path: Path) -> None:
    """A 1 GiB single line streamed through a FIFO: refused after reading the cap, never held in memory."""
    fifo = tmp_path / "huge.csv"
    os.mkfifo(fifo)
    written = [0]

    def feed() -> None:
        chunk = b"A" * (1 << 20)
        try:
            with open(fifo, "wb") as out:
                for _ in range(1024):
                    out.write(chunk)
                    written[0] += len(chunk)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match=r"huge\.csv.*row 1: line 1 is longer"):
            list(CsvFile(fp=str(fifo)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert written[0] < (64 << 20), "the reader stopped long before the 1 GiB line ended"
    assert peak < 4 << 20, f"peak Python memory {peak} bytes"
    assert elapsed < 5


def test_plain_text_worklists_too(tmp_path: Path) -> None:
    """The collector's one-id-per-line worklists (#15) get the same treatment: file, line, fix; bounded reads."""
    fp = write(tmp_path, b"# ids\nA1\n\nA\xe92\n", "ids.txt")
    with pytest.raises(ConfigError, match=r"'ids\.txt': line 4 is not UTF-8; save the file as UTF-8"):
        read_worklist(fp)
    with pytest.raises(ConfigError, match=r"line 2 holds NUL bytes"):
        read_worklist(write(tmp_path, b"A1\nPK\x03\x04\x00\x00\n", "bin.txt"))
    with pytest.raises(ConfigError, match=r"line 1 is longer than 4096 bytes"):
        read_worklist(write(tmp_path, b"7" * 10_000_000, "long.txt"))
    assert [d.tags["AccessionNumber"] for d in read_worklist(write(tmp_path, b"\xef\xbb\xbfA1\n# c\nA2\n", "ok.txt"))] \
        == ["A1", "A2"]
