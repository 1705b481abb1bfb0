"""Pseudonymization plan shared by every backend: what each identifier becomes, reproducibly.

``Pseudonymizer.replacement_map(tags)`` gives the new PatientID/Name/BirthDate (GUIDMint), AccessionNumber
(keyed hash), UIDs (KeyedUIDMint by default, DIANA's DicomUIDMint when ``uid_scheme="diana"``) and shifted dates.
Orthanc applies the map server-side; DcmDir applies it locally with pydicom. Because the map is a pure function of
the original tags (and the optional secret key), the pseudonymized Orthanc id is known before anything is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core.deid_profile import DeidReport, Profile
from diana_core.dicom import DicomLevel, DicomUIDMint, KeyedUIDMint, orthanc_id
from diana_core.errors import ConfigError, ValidationError
from diana_core.guid import GUIDMint, ShamIdentity, as_date

KEY_ENV = "DIANA_PSEUDONYM_KEY"
_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_IDENTITY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate")
UNKEYED = "unkeyed"


def key_path() -> Path:
    """Where ``diana key new`` stores the project key: $XDG_CONFIG_HOME/diana/pseudonym.key (~/.config/...)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "diana" / "pseudonym.key"


def load_key() -> str | None:
    """The pseudonym key: $DIANA_PSEUDONYM_KEY, else the key file (None when neither is set)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env
    path = key_path()
    if not path.exists():
        return None
    return load_key_file(path) or None


def new_key(path: str | os.PathLike[str] | None = None, force: bool = False) -> tuple[Path, str]:
    """Create a random key file (mode 0600, folder 0700); returns (path, key id). Never overwrites unless ``force``."""
    target = Path(path) if path else key_path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(32)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"a key already exists at {target} (id {key_id(load_key_file(target))}); "
                          "pass --force to replace it (pseudonyms made with it can no longer be reproduced)") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key + "\n")
    return target, key_id(key)


def load_key_file(path: str | os.PathLike[str]) -> str:
    """The key in ``path``; refuses a file others can read or write (as ssh does) and one that is not UTF-8 text."""
    target = Path(path)
    try:
        with target.open("rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the pseudonym key file {target}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"the pseudonym key file {target} is readable by others (mode {mode & 0o777:04o}); "
                          f"run: chmod 600 {target}")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the pseudonym key file {target} is not UTF-8 text (byte {exc.start}); "
                          "make a new one with 'diana key new --force'") from None


def _profile(spec: Any) -> Profile:
    return Profile.parse(spec)


def key_id(key: str | bytes | None) -> str:
    """A fingerprint that names a key without revealing it ("unkeyed" for none)."""
    if not key:
        return UNKEYED
    raw = key.encode() if isinstance(key, str) else key
    return "k-" + hashlib.sha256(b"diana-pseudonym-key-id\0" + raw).hexdigest()[:12]


def _parse_age(age: Any) -> float | None:
    """DICOM AS ("045Y", "006M", "010W", "003D") or a number -> years."""
    if age in (None, ""):
        return None
    if isinstance(age, (int, float)):
        return float(age)
    m = re.fullmatch(r"\s*(\d+)\s*([DWMY]?)\s*", str(age).upper())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "Y"
    return n / {"D": 365.25, "W": 52.18, "M": 12, "Y": 1}[unit]


def _as_date(value: Any) -> date | None:
    return as_date(value, strict=False)


def shift_date(value: str, offset: timedelta) -> str:
    """Shift a DICOM DA (YYYYMMDD) by whole days of ``offset``; unparseable values become ""."""
    parsed = _as_date(value)
    return (parsed + timedelta(days=offset.days)).strftime("%Y%m%d") if parsed else ""


def shift_datetime(da: str, tm: str | None, offset: timedelta) -> tuple[str, str]:
    """Shift a DA + TM pair by the full offset (days and seconds); returns (DA, TM)."""
    parsed = _as_date(da)
    if parsed is None:
        return "", ""
    clock = re.sub(r"[^0-9]", "", (tm or "").split(".")[0]).ljust(6, "0")[:6]
    try:
        start = datetime.combine(parsed, datetime.strptime(clock, "%H%M%S").time())
    except ValueError:
        start = datetime.combine(parsed, datetime.min.time())
    moved = start + offset
    return moved.strftime("%Y%m%d"), moved.strftime("%H%M%S")


@define
class Pseudonymizer:
    """Reproducible pseudonyms for one project, keyed by ``key`` ($DIANA_PSEUDONYM_KEY, else ``diana key new``'s
    file). Without a key it refuses (ConfigError) unless ``unkeyed`` (pseudonyms anyone can recompute).
    ``profile`` says what the de-identification engine applies; ``report`` counts what it did."""

    key: str | bytes | None = field(factory=load_key, repr=False)
    uid_scheme: str = "keyed"  # "keyed" (collision-free) | "diana" (original hierarchical scheme)
    uid_root: str = "2.25"
    app_id: str = "dicom"
    unkeyed: bool = False
    profile: Profile = field(factory=Profile, converter=_profile)
    report: DeidReport = field(factory=DeidReport, repr=False, eq=False)
    _identities: dict[tuple[str, ...], ShamIdentity] = field(init=False, factory=dict, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.uid_scheme not in {"keyed", "diana"}:
            raise ValidationError(f"uid_scheme must be 'keyed' or 'diana', not {self.uid_scheme!r}")
        self.report.profile, self.report.key_id = self.profile.name, self.key_id

    @property
    def key_id(self) -> str:
        """The key's fingerprint (never the key), "unkeyed" without one."""
        return key_id(self.key)

    def require_key(self) -> None:
        """Raise ConfigError when there is no key and ``unkeyed`` was not asked for."""
        if not self.key and not self.unkeyed:
            raise ConfigError(f"no pseudonym key: run 'diana key new' (or set ${KEY_ENV}); --unkeyed pseudonymizes "
                              "without one, and then anyone holding the originals can recompute the pseudonyms")

    @property
    def _key_bytes(self) -> bytes:
        self.require_key()
        if not self.key:
            return b""
        return self.key.encode() if isinstance(self.key, str) else self.key

    def identity(self, tags: Mapping[str, Any]) -> ShamIdentity:
        """The sham patient: name/sex/birth date (or age at the study date) of the original patient (cached)."""
        cache_key = tuple(str(tags.get(k) or "") for k in _IDENTITY_KEYS)
        sham = self._identities.get(cache_key)
        if sham is None:
            if len(self._identities) >= 10_000:
                self._identities.clear()
            sham = self._identities[cache_key] = self._identity(tags)
        return sham

    def _identity(self, tags: Mapping[str, Any]) -> ShamIdentity:
        name = str(tags.get("PatientName") or tags.get("PatientID") or "")
        if not name:
            raise ValidationError("cannot pseudonymize an item with neither PatientName nor PatientID")
        dob = _as_date(tags.get("PatientBirthDate"))
        age = _parse_age(tags.get("PatientAge"))
        ref = _as_date(tags.get("StudyDate"))
        if dob is None and (age is None or ref is None):
            # no birth date and no usable age: key the pseudonym on the patient id with a fixed epoch date
            name = f"{name}|{tags.get('PatientID', '')}"
            dob = date(1900, 1, 1)
        return GUIDMint(self._key_bytes or None).get_sham_id(name, dob=dob, age=age, reference_date=ref, gender=tags.get("PatientSex"))

    def uid(self, tags: Mapping[str, Any], level: DicomLevel) -> str:
        """The new UID of the item at ``level`` (STUDIES, SERIES or INSTANCES)."""
        keys = _UID_KEYS[: int(level) - 1]
        values = [tags.get(k) for k in keys]
        if not keys or any(v in (None, "") for v in values):
            raise ValidationError(f"cannot mint a {level} UID: missing {', '.join(keys) or 'level'}")
        if self.profile.has("retain-uids"):
            return str(values[-1])
        if self.uid_scheme == "diana":
            return DicomUIDMint(self.app_id).uid(str(tags.get("PatientID", "")), *values)
        return KeyedUIDMint(self._key_bytes, self.uid_root).remap(str(values[-1]))

    def remap_uid(self, uid: str) -> str:
        """Keyed remap of any UID (frame of reference, referenced SOPs): same input -> same output (the input
        itself under the retain-uids option)."""
        if self.profile.has("retain-uids"):
            self.require_key()
            return str(uid)
        return KeyedUIDMint(self._key_bytes, self.uid_root).remap(str(uid))

    def accession(self, accession: str) -> str:
        """16 upper-case hex characters of a keyed SHA-256 of the accession number (fits VR SH)."""
        return hmac.new(self._key_bytes, str(accession).encode(), hashlib.sha256).hexdigest()[:16].upper()

    def replacement_map(self, tags: Mapping[str, Any], level: DicomLevel | str = DicomLevel.STUDIES) -> dict[str, str]:
        """DICOM keyword -> new value for the identifiers of an item at ``level`` (and above)."""
        lvl = DicomLevel.from_label(level)
        sham = self.identity(tags)
        birth = sham.BirthDate
        if birth == _as_date(tags.get("PatientBirthDate")):
            # GUIDMint keeps the real date 1 time in 181 (shift 0); never let a real birth date through
            birth = birth + timedelta(days=91)
        out = {
            "PatientID": sham.ID,
            "PatientName": sham.dicom_name,
            "PatientBirthDate": birth.strftime("%Y%m%d"),
        }
        if tags.get("AccessionNumber"):
            out["AccessionNumber"] = self.accession(str(tags["AccessionNumber"]))
        for lv in (DicomLevel.STUDIES, DicomLevel.SERIES, DicomLevel.INSTANCES):
            if lv <= lvl and tags.get(_UID_KEYS[int(lv) - 2]):
                out[_UID_KEYS[int(lv) - 2]] = self.uid(tags, lv)
        if tags.get("StudyDate"):
            out["StudyDate"], new_time = shift_datetime(str(tags["StudyDate"]), tags.get("StudyTime"), sham.TimeOffset)
            if tags.get("StudyTime"):
                out["StudyTime"] = new_time
        return out

    def predicted_oid(self, tags: Mapping[str, Any], level: DicomLevel | str = DicomLevel.STUDIES) -> str:
        """Orthanc id the pseudonymized item will have (study level and above are exact on any backend)."""
        lvl = DicomLevel.from_label(level)
        new = self.replacement_map(tags, lvl)
        ids = [new["PatientID"]] + [new[k] for k in _UID_KEYS[: int(lvl) - 1]]
        return orthanc_id(*ids)
