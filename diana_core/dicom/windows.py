"""Date/time windows as DICOM query keys (C-FIND and QIDO-RS): StudyDate ("YYYYMMDD" or "YYYYMMDD-YYYYMMDD") + StudyTime ranges.

A window that crosses midnight cannot be one DA + TM range (TM ranges do not wrap), so it is split per day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def _da(dt: datetime) -> str:
    return dt.strftime("%Y%m%d")


def _tm(dt: datetime) -> str:
    return dt.strftime("%H%M%S")


def date_window_queries(start: datetime, end: datetime, date_key: str = "StudyDate",
                        time_key: str = "StudyTime") -> list[dict[str, Any]]:
    """C-FIND keys covering [start, end]: one query on a single day, else first day / whole days / last day."""
    if end < start:
        raise ValueError("date window ends before it starts")
    if start.date() == end.date():
        return [{date_key: _da(start), time_key: f"{_tm(start)}-{_tm(end)}"}]
    queries: list[dict[str, Any]] = [{date_key: _da(start), time_key: f"{_tm(start)}-235959"}]
    first_full, last_full = start.date() + timedelta(days=1), end.date() - timedelta(days=1)
    if first_full <= last_full:
        span = first_full.strftime("%Y%m%d")
        if last_full != first_full:
            span += "-" + last_full.strftime("%Y%m%d")
        queries.append({date_key: span})
    queries.append({date_key: _da(end), time_key: f"000000-{_tm(end)}"})
    return queries


def recent_window_queries(qperiod: float, now: datetime | None = None, **keys: str) -> list[dict[str, Any]]:
    """Queries for the last ``qperiod`` seconds up to ``now`` (local time by default)."""
    end = now or datetime.now()
    return date_window_queries(end - timedelta(seconds=qperiod), end, **keys)
