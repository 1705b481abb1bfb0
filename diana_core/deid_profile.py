"""De-identification profiles and reports as plain data (no DICOM library): what the one engine applies.

A ``Profile`` is the PS3.15 Annex E basic profile plus named Table E.1-1 options (combinable, e.g.
``retain-uids,clean-descriptors``) and a small YAML override file (keep / remove / replace by keyword or tag).
The DcmDir plugin's anonymizer turns it into an action table; every path pseudonymizes through that engine.
A ``DeidReport`` counts what the engine did in one job (elements by action, quarantined instances).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core.errors import ConfigError

# option name -> (CID 7050 code value, code meaning); names follow PS3.15 Table E.1-1's column headings
OPTIONS: dict[str, tuple[str, str]] = {
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
    "retain-uids": ("113110", "Retain UIDs Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-institution-identity": ("113112", "Retain Institution Identity Option"),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-full-dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-modified-dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "clean-structured-content": ("113104", "Clean Structured Content Option"),
    "clean-graphics": ("113103", "Clean Graphics Option"),
    # recorded per instance, only when a cleaning pass ran on it (see ``Profile.method_codes``)
    "clean-pixels": ("113101", "Clean Pixel Data Option"),
}
PER_INSTANCE = frozenset({"clean-pixels"})
BASIC = ("113100", "Basic Application Confidentiality Profile")
# not a PS3.15 option: deliver instances that may show burned-in PHI instead of quarantining them
ALLOW_BURNED_IN = "allow-burned-in"
DEFAULT_OPTIONS = ("retain-modified-dates", "retain-patient-characteristics")
DEFAULT_PROFILE = "basic," + ",".join(DEFAULT_OPTIONS)
_OVERRIDE_KEYS = {"options", "keep", "remove", "replace"}
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_TAG = re.compile(r"\(?\s*[0-9A-Fa-f]{4}\s*,?\s*[0-9A-Fa-f]{4}\s*\)?")


@define(frozen=True)
class Profile:
    """Basic profile + options + overrides (keywords or "(gggg,eeee)" tags); ``name`` is what was asked for."""

    options: frozenset[str] = frozenset(DEFAULT_OPTIONS)
    keep: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    name: str = DEFAULT_PROFILE
    overrides_digest: str | None = None

    @classmethod
    def parse(cls, spec: str | os.PathLike[str] | Profile | None) -> Profile:
        """A profile from None (the default), "basic,retain-uids,..." (options) or a YAML override file path."""
        if spec is None or spec == "":
            return cls()
        if isinstance(spec, Profile):
            return spec
        text = os.fspath(spec)
        if text.endswith((".yml", ".yaml")) or os.path.isfile(text):
            return cls._from_file(Path(text))
        words = [w.strip().lower() for w in text.replace("+", ",").split(",") if w.strip()]
        return cls(options=_options(words, text), name=",".join(words))

    @classmethod
    def _from_file(cls, path: Path) -> Profile:
        import yaml

        try:
            raw = path.read_bytes()
            data = yaml.safe_load(raw) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"profile file {path.name}: {type(exc).__name__}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"profile file {path.name}: expected a mapping with keys among "
                              f"{', '.join(sorted(_OVERRIDE_KEYS))}, got {_shown(data)}")
        unknown = sorted(str(k) for k in set(data) - _OVERRIDE_KEYS)
        if unknown:
            raise ConfigError(f"profile file {path.name}: unknown key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(_OVERRIDE_KEYS))}")
        words = data.get("options")
        if isinstance(words, str):
            words = [w for w in words.replace("+", ",").split(",") if w.strip()]
        if words is not None and not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
            raise ConfigError(f"profile file {path.name}: options must be a list of option names (e.g. "
                              f"[retain-uids]), got {_shown(words)}")
        options = _options([w.strip().lower() for w in words], path.name) if words is not None \
            else frozenset(DEFAULT_OPTIONS)
        replace = data.get("replace") or {}
        if not isinstance(replace, Mapping):
            raise ConfigError(f"profile file {path.name}: replace must map keywords to values, got {_shown(replace)}")
        for k, v in replace.items():
            _name(k, path, "replace")
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise ConfigError(f"profile file {path.name}: replace: {k} must be a text or number, got {_shown(v)}")
        return cls(options=options, keep=_names(data.get("keep"), path, "keep"),
                   remove=_names(data.get("remove"), path, "remove"),
                   replace=tuple((str(k), str(v)) for k, v in replace.items()),
                   name=f"{path.name}", overrides_digest=hashlib.sha256(raw).hexdigest()[:12])

    def has(self, option: str) -> bool:
        return option in self.options

    @property
    def method(self) -> list[str]:
        """DeidentificationMethod values (LO, 64 chars each): the profile, each option, the override file."""
        out = ["DIANA PS3.15 E.1-1 basic profile"]
        out += [OPTIONS[o][1][:64] for o in sorted(self.options) if o in OPTIONS and o not in PER_INSTANCE]
        if self.overrides_digest:
            out.append(f"overrides {self.name[:40]} sha256 {self.overrides_digest}"[:64])
        return out

    @property
    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 (code value, meaning) pairs for DeidentificationMethodCodeSequence (options applied per
        instance, such as clean-pixels, are added by the engine to the instances they were applied to)."""
        return [BASIC] + [OPTIONS[o] for o in sorted(self.options) if o in OPTIONS and o not in PER_INSTANCE]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "options": sorted(self.options), "keep": list(self.keep),
                "remove": list(self.remove), "replace": [k for k, _ in self.replace],
                "overrides_sha256": self.overrides_digest}


def _options(words: list[str], where: str) -> frozenset[str]:
    known = set(OPTIONS) | {ALLOW_BURNED_IN}
    bad = [w for w in words if w not in known and w != "basic"]
    if bad:
        raise ConfigError(f"profile {where!r}: unknown option(s) {', '.join(bad)}; known: basic, "
                          f"{', '.join(sorted(known))}")
    chosen = frozenset(w for w in words if w != "basic")
    if {"retain-full-dates", "retain-modified-dates"} <= chosen:
        raise ConfigError(f"profile {where!r}: choose retain-full-dates or retain-modified-dates, not both")
    return chosen


def _names(value: Any, path: Path, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"profile file {path.name}: {what} must be a list of keywords or (gggg,eeee) tags, "
                          f"got {_shown(value)}")
    return tuple(_name(v, path, what) for v in value)


def _name(value: Any, path: Path, what: str) -> str:
    """A DICOM keyword ("PatientAge") or tag ("(0010,1010)", "00101010"); whether the keyword exists is the
    engine's check (the core holds no data dictionary)."""
    if not isinstance(value, str) or not (_KEYWORD.fullmatch(value.strip()) or _TAG.fullmatch(value.strip())):
        raise ConfigError(f"profile file {path.name}: {what}: {_shown(value)} is neither a DICOM keyword nor a "
                          "(gggg,eeee) tag")
    return value.strip()


def _shown(value: Any) -> str:
    """A short rendering of a bad YAML value for an error line."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


@define
class DeidReport:
    """What the engine did in one job: profile, key id, element counts by action, quarantined instances."""

    profile: str = DEFAULT_PROFILE
    key_id: str = ""
    instances: int = 0
    actions: dict[str, int] = field(factory=dict)
    quarantined: list[dict[str, str]] = field(factory=list)
    cleaned: list[dict[str, Any]] = field(factory=list)
    # where quarantined instances are kept for review (a diana_core.quarantine.QuarantineStore), when a job has one
    store: Any = field(default=None, repr=False, eq=False)
    paths: dict[str, int] = field(factory=dict)  # instances by engine path: "fast" (raw elements), "fallback"
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False, eq=False)

    def add(self, counts: Mapping[str, int]) -> None:
        """Add one instance's counts (thread-safe)."""
        with self._lock:
            self.instances += 1
            for action, n in counts.items():
                self.actions[action] = self.actions.get(action, 0) + n

    def took(self, path: str) -> None:
        """Count one instance written by engine path ``path`` ("fast" or "fallback")."""
        with self._lock:
            self.paths[path] = self.paths.get(path, 0) + 1

    def quarantine(self, instance: str, reason: str, study: str = "") -> None:
        """Record an instance kept back, by ids that are no PHI (the original's Orthanc instance and study ids)."""
        with self._lock:
            self.quarantined.append({"instance": instance, "study": study, "reason": reason})

    def clean(self, instance: str, boxes: int, rules: int, study: str = "") -> None:
        """Record an instance whose pixels were cleaned (clean-pixels): ids and box counts, no PHI."""
        with self._lock:
            self.cleaned.append({"instance": instance, "study": study, "boxes": boxes, "rules": rules})

    def quarantined_in(self, study: str) -> int:
        """How many instances of the study (original Orthanc study id) were kept back."""
        with self._lock:
            return sum(1 for q in self.quarantined if q["study"] == study)

    def asdict(self) -> dict[str, Any]:
        with self._lock:
            return {"profile": self.profile, "key_id": self.key_id, "instances": self.instances,
                    "actions": dict(sorted(self.actions.items())), "quarantined": list(self.quarantined),
                    "pixels_cleaned": list(self.cleaned),
                    "paths": dict(sorted(self.paths.items()))}

    def write(self, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
        """Write the report as JSON (atomically) and return its path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part")
        tmp.write_text(json.dumps({**self.asdict(), **(extra or {})}, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        return out
