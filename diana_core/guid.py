"""GUIDMint: reproducible pseudo-identities (ID, name, birth date, time offset) from a name and birth date.

The default is the exact original DIANA algorithm, so existing datasets keep their pseudonyms. With a secret
``key`` the first digest becomes an HMAC, so outsiders who guess a name and birth date cannot recompute the ID.
Name lists are the 1990 US Census files shipped by the PyPI package ``names``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import random
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from importlib import resources
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from attrs import define

from diana_core.errors import ValidationError

SHAM_KEYS = ("ID", "Name", "BirthDate", "TimeOffset")
P = ParamSpec("P")
R = TypeVar("R")


@define(frozen=True, eq=False)
class ShamIdentity:
    """A pseudo-identity. ``Name`` is [last, first, middle initial]; ``dicom_name`` joins it DICOM style.

    Also reads as the original's result mapping: ``r["ID"]``, ``r["Name"]``, ``r["BirthDate"]``, ``r["TimeOffset"]``,
    and compares equal to a dict with those four values.
    """

    ID: str
    Name: list[str]
    BirthDate: date
    TimeOffset: timedelta

    @property
    def dicom_name(self) -> str:
        return "^".join(self.Name).upper()

    def __getitem__(self, key: str) -> Any:
        if key not in SHAM_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return SHAM_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in SHAM_KEYS else default

    def __iter__(self) -> Iterator[str]:
        return iter(SHAM_KEYS)

    def __len__(self) -> int:
        return len(SHAM_KEYS)

    def __contains__(self, key: object) -> bool:
        return key in SHAM_KEYS

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ShamIdentity | dict):
            try:
                return all(self[k] == other[k] for k in SHAM_KEYS) and len(other) == len(SHAM_KEYS)
            except KeyError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.ID, tuple(self.Name), self.BirthDate, self.TimeOffset))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ID": self.ID,
            "Name": self.dicom_name,
            "BirthDate": self.BirthDate.isoformat(),
            "TimeOffset": self.TimeOffset.total_seconds(),
        }


@functools.cache
def _census(filename: str) -> tuple[str, ...]:
    text = resources.files("names").joinpath(filename).read_text(encoding="ascii")
    return tuple(sorted(line.split()[0] for line in text.splitlines() if line.strip()))


@functools.cache
def _starting_with(filename: str, letter: str) -> tuple[str, ...]:
    return tuple(n for n in _census(filename) if n.startswith(letter))


# what the original accepted (it used dateutil): US numeric dates, month names, ISO date-times
_HUMAN_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y")


def as_date(value: date | datetime | str | None, strict: bool = True) -> date | None:
    """A date from a date, a datetime, "YYYY-MM-DD" or "YYYYMMDD" (None for empty).

    ``strict``: also the original's human forms ("1/1/2018", "January 1, 2018", ISO date-times); anything else
    raises ValidationError. Lenient: a DICOM DA/DT prefix is read, garbage gives None.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    candidate = text if strict else (text[:10] if "-" in text else text[:8])
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(candidate, fmt).date()
        except ValueError:
            continue
    if strict:
        for fmt in _HUMAN_FORMATS:
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            pass
        raise ValidationError("cannot read a date value; use YYYY-MM-DD, YYYYMMDD, M/D/YYYY or 'January 1, 2018'")
    return None


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def normalize_gender(gender: Any) -> str:
    """First letter upper-cased; anything but M/F becomes U."""
    letter = str(getattr(gender, "value", gender) or "U")[:1].upper()
    return letter if letter in {"M", "F"} else "U"


class _ClassOrInstance(Generic[P, R]):
    """A method callable on the class (the original's classmethods: no key) or on an instance (its key)."""

    def __init__(self, func: Callable[Concatenate[Any, P], R]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, owner: type) -> Callable[P, R]:
        return cast(Callable[P, R], MethodType(self.func, obj if obj is not None else owner()))


class GUIDMint:
    """Mint for reproducible pseudo-identities; uses private PRNGs, never the global one. ``get_sham_id`` and
    ``get_hash`` also work on the class itself (``GUIDMint.get_sham_id(...)``, unkeyed) as the original's did."""

    def __init__(self, key: str | bytes | None = None) -> None:
        self.key = key.encode() if isinstance(key, str) else key

    @staticmethod
    def name_key(name: str) -> str:
        """"MERCK^DEREK^L" -> "derek-l-merck": lowercase words, sorted, joined by "-"."""
        return "-".join(sorted(w for w in re.split(r"[^a-z0-9]", str(name).lower()) if w))

    @_ClassOrInstance
    def get_hash(
        self,
        name: str,
        dob: date | str | None = None,
        age: int | float | str | None = None,
        reference_date: date | str | None = None,
        gender: Any = "U",
    ) -> tuple[Any, date]:
        """The first digest and the birth date used; age needs a reference date (never "today").

        A ``datetime`` is hashed as the original hashed it, time included ("1980-03-04T00:00:00": its CLI passed
        datetimes); dates and text are read as days ("1980-03-04")."""
        born = dob if isinstance(dob, datetime) else as_date(dob)
        if born is None:
            ref = reference_date if isinstance(reference_date, datetime) else as_date(reference_date)
            if age is None or age == "" or ref is None:
                raise ValidationError("a pseudonym needs a birth date, or an age with a reference date")
            born = ref - timedelta(days=float(age) * 365.25)
        message = f"{self.name_key(name)}|{born.isoformat()}|{normalize_gender(gender)}".encode()
        digest = hmac.new(self.key, message, hashlib.sha1) if self.key else hashlib.sha1(message)
        return digest, born

    @staticmethod
    def get_id(h: Any) -> str:
        """Base32 of the digest; rehash until the first three characters are letters."""
        ident = base64.b32encode(h.digest()).decode()
        while not ident[0:3].isalpha():
            h = hashlib.sha1(h.digest())
            ident = base64.b32encode(h.digest()).decode()
        return ident

    @staticmethod
    def get_name(ident: str, gender: Any = "U") -> list[str]:
        """[surname starting with ID[0], first name starting with ID[1], ID[2]]."""
        rng = random.Random(ident)
        firsts = "dist.female.first" if normalize_gender(gender) == "F" else "dist.male.first"
        last = rng.choice(_starting_with("dist.all.last", ident[0]))
        first = rng.choice(_starting_with(firsts, ident[1]))
        return [last, first, ident[2]]

    @staticmethod
    def get_new_dob(ident: str, dob: date) -> date:
        """The birth date moved by a reproducible -90..90 days."""
        return dob + timedelta(days=random.Random(ident).randint(-90, 90))

    @staticmethod
    def get_time_offset(ident: str) -> timedelta:
        """A reproducible shift of -90..90 days and -3600..3600 seconds for study dates and times."""
        rng = random.Random(ident)
        return timedelta(days=rng.randint(-90, 90), seconds=rng.randint(-3600, 3600))

    @_ClassOrInstance
    def get_sham_id(
        self,
        name: str,
        dob: date | str | None = None,
        age: int | float | str | None = None,
        reference_date: date | str | None = None,
        gender: Any = "U",
    ) -> ShamIdentity:
        """Pseudo-identity for a person; raises ValidationError without a usable birth date."""
        h, born = self.get_hash(name, dob, age, reference_date, gender)
        ident = self.get_id(h)
        return ShamIdentity(
            ID=ident,
            Name=self.get_name(ident, gender),
            BirthDate=_day(self.get_new_dob(ident, born)),
            TimeOffset=self.get_time_offset(ident),
        )
