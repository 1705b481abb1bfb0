"""DICOM string helpers the original DIANA exported: DA/TM/DT strings to and from datetimes, and PN names.

Stdlib only. ``parse_dicom_datetime`` reads the two forms scanners write (GE "YYYYMMDDHHMMSS", Siemens with
fractional seconds); ``date_str_to_dicom`` reads the human forms the original accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from diana_core.errors import ValidationError

_DT_FORMATS = ("%Y%m%d%H%M%S", "%Y%m%d%H%M%S.%f")
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%m/%d/%y", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y")


def dicom_name(names: Iterable[str]) -> str:
    """``["Merck", "Derek", "L"]`` -> ``"MERCK^DEREK^L"`` (a PN value)."""
    return "^".join(names).upper()


def dicom_date(dt: date | datetime) -> str:
    """A DA value, ``YYYYMMDD``."""
    return dt.strftime("%Y%m%d")


def dicom_time(dt: datetime) -> str:
    """A TM value, ``HHMMSS`` (fractions dropped, as the original did)."""
    return dt.strftime("%H%M%S")


def dicom_datetime(dt: datetime) -> tuple[str, str]:
    """The (DA, TM) pair of a datetime."""
    return dicom_date(dt), dicom_time(dt)


def parse_dicom_datetime(dts: str, tms: str | None = None) -> datetime:
    """A datetime from a DT string, or a DA string plus a TM string; ValidationError when neither form fits
    (the original logged and returned None; the value itself is not repeated, dates are PHI)."""
    text = f"{dts}{tms}" if tms else str(dts)
    for fmt in _DT_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise ValidationError("not a DICOM date-time (YYYYMMDDHHMMSS[.ffffff])")


def date_str_to_dicom(text: str | date) -> str:
    """A DA value from ISO, YYYYMMDD, "1/1/2018" or "January 1, 2018" (the forms the original's tests used)."""
    if isinstance(text, date):
        return dicom_date(text)
    value = str(text).strip()
    for fmt in _DATE_FORMATS:
        try:
            return dicom_date(datetime.strptime(value, fmt))
        except ValueError:
            continue
    try:
        return dicom_date(datetime.fromisoformat(value))
    except ValueError:
        raise ValidationError("cannot read a date value; use YYYY-MM-DD, M/D/YYYY or 'January 1, 2018'") from None
