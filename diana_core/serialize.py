"""The one cattrs converter: Dixels and endpoint configs to/from plain dicts and JSON."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import attrs
import cattrs

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import ConfigError, DianaError

converter = cattrs.Converter(forbid_extra_keys=True)


def iso_time(ts: float | None = None, timespec: str = "seconds") -> str:
    """The one time format of every command, log, report and page: ISO 8601 local time with its UTC offset."""
    return datetime.fromtimestamp(time.time() if ts is None else ts).astimezone().isoformat(timespec=timespec)


converter.register_unstructure_hook(DicomLevel, str)
converter.register_structure_hook(DicomLevel, lambda v, _: DicomLevel.from_label(v))
converter.register_unstructure_hook(DixelView, int)
converter.register_structure_hook(DixelView, lambda v, _: DixelView.from_label(v))
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_structure_hook(datetime, lambda v, _: v if isinstance(v, datetime) else datetime.fromisoformat(v))
converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook(date, lambda v, _: v if isinstance(v, date) else date.fromisoformat(v))
converter.register_unstructure_hook(timedelta, timedelta.total_seconds)
converter.register_structure_hook(timedelta, lambda v, _: v if isinstance(v, timedelta) else timedelta(seconds=v))
converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
converter.register_structure_hook(bytes, lambda v, _: v if isinstance(v, bytes) else base64.b64decode(v))


def _revive(tags: dict[str, Any]) -> dict[str, Any]:
    out = dict(tags)
    for key, value in tags.items():
        if key.endswith("DateTime") and isinstance(value, str):
            try:
                out[key] = datetime.fromisoformat(value)
            except ValueError:
                pass
    return out


def _unstructure_dixel(d: Dixel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "level": str(d.level),
        "meta": converter.unstructure(d.meta),
        "tags": converter.unstructure(d.tags),
    }
    if d.children:
        out["children"] = [_unstructure_dixel(c) for c in d.children]
    if d.file is not None:
        out["file"] = converter.unstructure(d.file)
    if d.report is not None:
        out["report"] = str(d.report)
    return out


def _structure_dixel(data: dict[str, Any], _: Any = None) -> Dixel:
    dixel = Dixel(
        meta=_revive(data.get("meta", {})),
        tags=_revive(data.get("tags", {})),
        level=DicomLevel.from_label(data.get("level", "studies")),
        file=converter.structure(data["file"], bytes) if data.get("file") is not None else None,
        report=data.get("report"),
    )
    for child in data.get("children", []):
        kid = _structure_dixel(child)
        kid.parent = dixel
        dixel.children.append(kid)
    return dixel


converter.register_unstructure_hook(Dixel, _unstructure_dixel)
converter.register_structure_hook(Dixel, _structure_dixel)


def to_json(obj: Any, **kwargs: Any) -> str:
    """JSON text for a Dixel, an endpoint or any structure the converter knows."""
    data = obj.asdict() if hasattr(obj, "asdict") else converter.unstructure(obj)
    if isinstance(obj, Dixel):
        data = {"ctype": "Dixel", **data}  # so Factory.create(json.loads(text)) rebuilds it
    return json.dumps(data, default=str, **kwargs)


def dixel_from_json(text: str) -> Dixel:
    return _structure_dixel(json.loads(text))


def config_fields(cls: type) -> list[str]:
    """Names of the init fields of an attrs endpoint class (what a service file may set)."""
    return [f.name for f in attrs.fields(cls) if f.init]


def structure_config(cls: type, data: Mapping[str, Any], service: str, ctype: str | None = None) -> Any:
    """Build ``cls`` from a plain config mapping; ConfigError names the service and the bad key, never a value."""
    ctype = ctype or cls.__name__
    if attrs.has(cls):
        allowed = set(config_fields(cls))
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"service {service!r} ({ctype}): unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}"
            )
        try:
            return converter.structure(dict(data), cls)
        except cattrs.BaseValidationError as exc:
            said = _own_error(exc)
            if said is not None:  # a field converter already said what is wrong and how to fix it
                said = said.removeprefix(f"service {service!r}: ")  # (an endpoint names itself when built in code)
                raise ConfigError(f"service {service!r} ({ctype}): {said}") from None
            bad = _first_bad_key(exc)
            raise ConfigError(f"service {service!r} ({ctype}): bad value for key {bad!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"service {service!r} ({ctype}): {exc}") from exc
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"service {service!r} ({ctype}): {exc}") from exc


def _own_error(exc: BaseException) -> str | None:
    for sub in getattr(exc, "exceptions", ()):
        if isinstance(sub, DianaError):
            return str(sub)
        found = _own_error(sub)
        if found is not None:
            return found
    return None


def _first_bad_key(exc: cattrs.BaseValidationError) -> str:
    for sub in exc.exceptions:
        note = getattr(sub, "__notes__", None)
        if note:
            match = re.search(r"attribute '?(\w+)'?", str(note[0])) or re.search(r"@ \$\.(\w+)", str(note[0]))
            if match:
                return match.group(1)
        if isinstance(sub, cattrs.BaseValidationError):
            return _first_bad_key(sub)
    return "?"
