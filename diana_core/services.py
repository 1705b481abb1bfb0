"""Service files: named endpoint descriptions (YAML or JSON) -> endpoint instances, built on first use.

Each entry is ``name: {ctype: Orthanc, host: ..., password: ${ORTHANC_PASSWORD}}``. ``${VAR}`` and
``${VAR:-default}`` are expanded from the environment, so secrets stay out of the file. Errors name the service
and the key at fault, never the value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from diana_core.errors import ConfigError
from diana_core.plugins import get_plugin_manager
from diana_core.ports import Serializable
from diana_core.serialize import config_fields, structure_config

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, service: str, key: str) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in strings (recursively in lists and dicts)."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(f"service {service!r}, key {key!r}: environment variable {var} is not set")

        return _ENV_RE.sub(repl, value)
    if isinstance(value, list):
        return [expand_env(v, service, key) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, service, f"{key}.{k}") for k, v in value.items()}
    return value


def build_endpoint(ctype: str, kwargs: Mapping[str, Any], service_name: str | None = None) -> Any:
    """Instantiate ctype with kwargs (env-expanded, type-converted); ConfigError names the bad key."""
    service = service_name or ctype
    cls = get_plugin_manager().endpoint_class(ctype, service)
    data = {k: expand_env(v, service, k) for k, v in kwargs.items()}
    if not attrs.has(cls) or "name" in config_fields(cls):
        data.setdefault("name", service)  # a registered class without a name field (e.g. a value type) gets none
    return structure_config(cls, data, service, ctype)


Serializable.use_builder(build_endpoint)  # Serializable.fromdict builds through service-file rules and plugins


MAX_SERVICE_FILE = 4 << 20
"""Bytes a service file may hold; anything larger is not a list of service descriptions."""


def _read(path: Path) -> dict[str, Any]:
    """Parse a service file; errors name the file, line and column, never a line's text (it may hold a password)."""
    where = f"service file {str(path)!r}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SERVICE_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror}") from exc
    if len(raw) > MAX_SERVICE_FILE:
        raise ConfigError(f"{where} is larger than {MAX_SERVICE_FILE >> 20} MiB: not a service file")
    if b"\x00" in raw:
        raise ConfigError(f"{where} holds NUL bytes: it is a binary file, not YAML or JSON text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{where} is not UTF-8 text (line {line}, column {column}); save it as UTF-8") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:  # str(exc) quotes the offending line: keep only the position
            mark = exc.problem_mark or exc.context_mark
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"{where} is not valid YAML: {exc.problem or exc.context}{at}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where} is not valid YAML ({type(exc).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must map service names to descriptions")
    return data


class Services(Mapping[str, Any]):
    """Named services; each endpoint is built on first access (one broken entry does not block the others)."""

    def __init__(self, descriptions: Mapping[str, Any], source: str = "<mapping>") -> None:
        self.source = source
        self.descriptions: dict[str, dict[str, Any]] = {}
        for name, desc in descriptions.items():
            if not isinstance(desc, Mapping) or "ctype" not in desc:
                raise ConfigError(f"service {name!r} in {source} needs a mapping with a 'ctype' key")
            self.descriptions[str(name)] = dict(desc)
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in self.descriptions:
                known = ", ".join(sorted(self.descriptions)) or "none"
                raise ConfigError(f"no service named {name!r} in {self.source}; known services: {known}")
            desc = dict(self.descriptions[name])
            ctype = desc.pop("ctype")
            self._built[name] = build_endpoint(ctype, desc, service_name=name)
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self.descriptions

    def __iter__(self) -> Iterator[str]:
        return iter(self.descriptions)

    def __len__(self) -> int:
        return len(self.descriptions)


def default_services_path() -> Path:
    """``$XDG_CONFIG_HOME/diana/services.yml`` (``~/.config/diana/services.yml``): used when no file is named."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(config) / "diana" / "services.yml"


def load_services(path_or_mapping: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> Services:
    """Services from a YAML/JSON file, a mapping, or (None) the file named by ``DIANA_SERVICES``, else the default
    ``$XDG_CONFIG_HOME/diana/services.yml`` when it exists (``-s FILE`` beats ``DIANA_SERVICES`` beats the default)."""
    if path_or_mapping is None:
        env = os.environ.get("DIANA_SERVICES") or (str(default_services_path())
                                                   if default_services_path().is_file() else None)
        if not env:
            return Services({}, source="<no service file>")
        path_or_mapping = env
    if isinstance(path_or_mapping, Mapping):
        return Services(path_or_mapping)
    path = Path(path_or_mapping)
    return Services(_read(path), source=str(path))


def refuse_original_shortcut(spec: str) -> None:
    """ConfigError showing today's spelling for the original CLI's "path:/incoming" / "orthanc:..." shortcuts,
    which would otherwise name a new folder literally called "path:/incoming"."""
    scheme, colon, rest = spec.partition(":")
    if not colon or scheme.lower() not in ("path", "orthanc"):
        return
    if scheme.lower() == "path":
        raise ConfigError(f"{spec!r} is the original DIANA's shortcut; write the folder itself: {rest or '/folder'!r}")
    raise ConfigError(f"{spec!r} is the original DIANA's shortcut; name a service from the service file instead, "
                      "e.g. pacs: {ctype: ObservableOrthanc, host: ..., user: ..., password: ${PACS_PASSWORD}} "
                      "and write 'pacs'")


def resolve_endpoint(spec: str, services: Services, observable: bool = False) -> Any:
    """A service name from the file, else a shorthand: a folder path -> DcmDir (ObservableDcmDir when
    ``observable``), a .csv path -> CsvFile."""
    if spec in services.descriptions:
        return services[spec]
    refuse_original_shortcut(spec)
    if spec.lower().endswith(".csv"):
        return build_endpoint("CsvFile", {"fp": spec}, service_name=spec)
    if os.sep in spec or spec.startswith(".") or Path(spec).is_dir():
        return build_endpoint("ObservableDcmDir" if observable else "DcmDir", {"path": spec}, service_name=spec)
    known = ", ".join(sorted(services.descriptions)) or "none"
    raise ConfigError(f"no service named {spec!r} in {services.source} (known: {known}); give -s FILE or a path")


class Factory:
    """The original's ``Serializable.Factory``: build an object from a description with a ``ctype`` key."""

    @staticmethod
    def create(desc: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        """``Factory.create(ctype="Redis", host=...)`` or ``Factory.create({"ctype": ...})``: an endpoint of a
        plugin's or a Python-registered ctype; ``ctype: Dixel`` rebuilds a Dixel from its dict form."""
        data = {**dict(desc or {}), **fields}
        ctype = data.pop("ctype", None)
        if not ctype:
            raise ConfigError("Factory.create needs a 'ctype'")
        if ctype == "Dixel":
            from diana_core.dixel import Dixel
            from diana_core.serialize import converter

            return converter.structure(data, Dixel)
        return build_endpoint(str(ctype), data, service_name=data.get("name"))


Serializable.Factory = Factory
