"""Plugin manager: discovers ``diana`` entry points, loads each one separately, validates what they register.

A broken plugin is reported (``diana plugins``, a warning) and the others still load. ``DIANA_PLUGINS`` set to a
comma-separated list of entry-point names loads only those (empty: none; the core's own plugin always loads).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pluggy
from attrs import define, field

from diana_core import hookspecs
from diana_core.errors import ConfigError, PluginError

logger = logging.getLogger(__name__)

# ctype -> extra that provides it, for "unknown ctype" advice (third-party ctypes are simply "not installed")
KNOWN_EXTRAS = {
    "Orthanc": "orthanc", "ObservableOrthanc": "orthanc",
    "ProxiedDicom": "proxied", "ObservableProxiedDicom": "proxied",
    "DcmDir": "dcmdir", "ObservableDcmDir": "dcmdir",
    "Montage": "montage", "Redis": "redis", "CsvFile": "csv",
    "MockSite": "mock", "MockDevice": "mock",
}


@define
class PluginInfo:
    """What one plugin distribution brought."""

    name: str
    dist: str
    version: str
    ctypes: list[str] = field(factory=list)
    handlers: list[str] = field(factory=list)
    error: str | None = None


@define
class DianaPlugins:
    """The loaded plugins and their registrations."""

    pm: pluggy.PluginManager
    endpoints: dict[str, type] = field(factory=dict)
    handlers: dict[str, Callable[..., Any]] = field(factory=dict)
    infos: dict[str, PluginInfo] = field(factory=dict)
    _owner: dict[str, str] = field(factory=dict)

    def endpoint_class(self, ctype: str, service_name: str | None = None) -> type:
        """The class for a ctype; ConfigError saying what is installed and which extra to add."""
        try:
            return self.endpoints[ctype]
        except KeyError:
            pass
        where = f" in service {service_name!r}" if service_name else ""
        known = ", ".join(sorted(self.endpoints)) or "none"
        extra = KNOWN_EXTRAS.get(ctype)
        advice = f"install it with: pip install 'diana-dicom[{extra}]'" if extra else "is its plugin installed?"
        raise ConfigError(f"unknown ctype {ctype!r}{where}; installed ctypes: {known}; {advice}")

    def handler(self, name: str) -> Callable[..., Any]:
        try:
            return self.handlers[name]
        except KeyError:
            known = ", ".join(sorted(self.handlers)) or "none"
            raise ConfigError(f"unknown route handler {name!r}; installed handlers: {known}") from None

    def _register_all(self, plugin: Any, info: PluginInfo) -> None:
        def reg_endpoint(ctype: str, cls: type) -> None:
            if not isinstance(cls, type):
                raise PluginError(f"plugin {info.name!r} registered {ctype!r} with a non-class {cls!r}")
            if ctype in self.endpoints and self.endpoints[ctype] is not cls:
                raise PluginError(f"ctype {ctype!r} is provided by both {self._owner[ctype]!r} and {info.name!r}")
            self.endpoints[ctype] = cls
            self._owner[ctype] = info.name
            info.ctypes.append(ctype)

        def reg_handler(name: str, func: Callable[..., Any]) -> None:
            key = f"handler:{name}"
            if name in self.handlers and self.handlers[name] is not func:
                raise PluginError(f"handler {name!r} is provided by both {self._owner[key]!r} and {info.name!r}")
            self.handlers[name] = func
            self._owner[key] = info.name
            info.handlers.append(name)

        if hasattr(plugin, "diana_endpoints"):
            plugin.diana_endpoints(register=reg_endpoint)
        if hasattr(plugin, "diana_handlers"):
            plugin.diana_handlers(register=reg_handler)

    def add(self, plugin: Any, name: str, dist: str = "diana-dicom", version: str = "") -> PluginInfo:
        """Register one plugin object (module or instance); errors are kept in its PluginInfo."""
        info = PluginInfo(name=name, dist=dist, version=version)
        self.infos[name] = info
        try:
            self.pm.register(plugin, name=name)
            self._register_all(plugin, info)
        except PluginError:
            self.pm.unregister(name=name)
            raise
        return info

    def extend_cli(self, cli: Any) -> None:
        """Let plugins add click commands; a failing plugin is reported and skipped."""
        for name, plugin in self.pm.list_name_plugin():
            if hasattr(plugin, "diana_cli"):
                try:
                    plugin.diana_cli(cli=cli)
                except Exception as exc:  # noqa: BLE001 - a plugin bug must not break the CLI
                    warnings.warn(f"diana plugin {name!r} failed to add commands: {exc}", stacklevel=2)


def _selected() -> set[str] | None:
    raw = os.environ.get("DIANA_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def load_plugins(entry_points: bool = True) -> DianaPlugins:
    """A fresh plugin manager with the core plugin and (unless disabled) every installed entry point."""
    pm = pluggy.PluginManager("diana")
    pm.add_hookspecs(hookspecs)
    plugins = DianaPlugins(pm=pm)
    from diana_core import builtin_plugin

    plugins.add(builtin_plugin, name="core", dist="diana-dicom", version=_version("diana-dicom"))
    if not entry_points:
        return plugins
    wanted = _selected()
    installed = metadata.entry_points(group="diana")
    unknown = sorted((wanted or set()) - {ep.name for ep in installed} - {"core"})
    if unknown:
        names = ", ".join(sorted({ep.name for ep in installed})) or "none"
        warnings.warn(f"DIANA_PLUGINS names {', '.join(map(repr, unknown))}, which is not installed; "
                      f"installed plugins: {names}", stacklevel=2)
    for ep in installed:
        if wanted is not None and ep.name not in wanted:
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        try:
            module = ep.load()
            plugins.add(module, name=ep.name, dist=dist, version=version)
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the host down
            message = f"{type(exc).__name__}: {exc}"
            plugins.infos[ep.name] = PluginInfo(name=ep.name, dist=dist, version=version, error=message)
            warnings.warn(f"diana plugin {ep.name!r} ({dist}) failed to load: {message}", stacklevel=2)
    return plugins


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+unknown"


_lock = threading.Lock()
_current: DianaPlugins | None = None


def get_plugin_manager() -> DianaPlugins:
    """The process-wide plugins, loaded once on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = load_plugins()
        return _current


def reset_plugin_manager(plugins: DianaPlugins | None = None) -> None:
    """Forget (or replace) the loaded plugins; tests use this to control what is loaded."""
    global _current
    with _lock:
        _current = plugins
