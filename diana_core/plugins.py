"""Plugin manager: discovers ``diana`` entry points, loads each one separately, validates what they register.

A broken plugin is reported (``diana plugins``, a warning) and the others still load; nothing a plugin does at
import (an exception, ``sys.exit()``) stops the host. A plugin is accepted or refused whole: a refused plugin leaves
no ctype or handler behind. First-party distributions (``diana-dicom*``) load before third-party ones, so a
third-party plugin can never take a first-party ctype. The core's own plugin is an entry point like any other
(``core``, in the ``diana-dicom`` distribution) and always loads. ``DIANA_PLUGINS`` set to a comma-separated list of
entry-point names loads only those (empty: none but the core).
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
from diana_core.ports import Serializable

logger = logging.getLogger(__name__)

# ctype -> extra that provides it, for "unknown ctype" advice (third-party ctypes are simply "not installed")
KNOWN_EXTRAS = {
    "Orthanc": "orthanc", "ObservableOrthanc": "orthanc",
    "ProxiedDicom": "proxied", "ObservableProxiedDicom": "proxied",
    "DcmDir": "dcmdir", "ObservableDcmDir": "dcmdir",
    "Montage": "montage", "Redis": "redis", "CsvFile": "csv",
    "MockSite": "mock", "MockDevice": "mock", "Splunk": "splunk",
}


@define
class PluginInfo:
    """What one plugin distribution brought."""

    name: str
    dist: str
    version: str
    ctypes: list[str] = field(factory=list)
    handlers: list[str] = field(factory=list)
    pixel_cleaners: list[str] = field(factory=list)
    error: str | None = None


@define
class DianaPlugins:
    """The loaded plugins and their registrations."""

    pm: pluggy.PluginManager
    endpoints: dict[str, type] = field(factory=dict)
    handlers: dict[str, Callable[..., Any]] = field(factory=dict)
    pixel_cleaners: dict[str, Callable[[], Any]] = field(factory=dict)
    infos: dict[str, PluginInfo] = field(factory=dict)
    _owner: dict[str, str] = field(factory=dict)
    _built: dict[str, Any] = field(factory=dict)

    def endpoint_class(self, ctype: str, service_name: str | None = None) -> type:
        """The class for a ctype; ConfigError saying what is installed and which extra to add."""
        try:
            return self.endpoints[ctype]
        except KeyError:
            pass
        registered = Serializable.registered(ctype)
        if registered is not None:
            return registered
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

    def pixel_cleaner(self) -> Any:
        """The ``clean-pixels`` cleaner (a ``PixelCleaner``, built once); ConfigError with the install line."""
        from diana_core.pixels import PIXELS_INSTALL

        if not self.pixel_cleaners:
            raise ConfigError(f"profile option clean-pixels needs the pixels plugin: {PIXELS_INSTALL}")
        name = sorted(self.pixel_cleaners)[0]
        if name not in self._built:
            self._built[name] = self.pixel_cleaners[name]()
        return self._built[name]

    def _register_all(self, plugin: Any, info: PluginInfo) -> None:
        """Collect what the plugin registers, validate it all, then commit it all (or nothing)."""
        endpoints: dict[str, type] = {}
        handlers: dict[str, Callable[..., Any]] = {}

        def reg_endpoint(ctype: str, cls: type) -> None:
            if not isinstance(cls, type):
                raise PluginError(f"plugin {info.name!r} registered {ctype!r} with a non-class {cls!r}")
            if ctype in self.endpoints and self.endpoints[ctype] is not cls:
                raise PluginError(f"ctype {ctype!r} is provided by both {self._owner[ctype]!r} and {info.name!r}")
            endpoints[ctype] = cls

        def reg_handler(name: str, func: Callable[..., Any]) -> None:
            key = f"handler:{name}"
            if not callable(func):
                raise PluginError(f"plugin {info.name!r} registered handler {name!r} with a non-callable")
            if name in self.handlers and self.handlers[name] is not func:
                raise PluginError(f"handler {name!r} is provided by both {self._owner[key]!r} and {info.name!r}")
            handlers[name] = func

        cleaners: dict[str, Callable[[], Any]] = {}

        def reg_cleaner(name: str, factory: Callable[[], Any]) -> None:
            if not callable(factory):
                raise PluginError(f"plugin {info.name!r} registered pixel cleaner {name!r} with a non-callable")
            cleaners[name] = factory

        if hasattr(plugin, "diana_pixel_cleaners"):
            plugin.diana_pixel_cleaners(register=reg_cleaner)
        if hasattr(plugin, "diana_endpoints"):
            plugin.diana_endpoints(register=reg_endpoint)
        if hasattr(plugin, "diana_handlers"):
            plugin.diana_handlers(register=reg_handler)
        for ctype, cls in endpoints.items():
            self.endpoints[ctype] = cls
            self._owner[ctype] = info.name
            info.ctypes.append(ctype)
        for name, func in handlers.items():
            self.handlers[name] = func
            self._owner[f"handler:{name}"] = info.name
            info.handlers.append(name)
        self.pixel_cleaners.update(cleaners)
        info.pixel_cleaners.extend(cleaners)

    def add(self, plugin: Any, name: str, dist: str = "diana-dicom", version: str = "") -> PluginInfo:
        """Register one plugin object (module or instance); PluginError (nothing registered) when refused."""
        info = PluginInfo(name=name, dist=dist, version=version)
        self.pm.register(plugin, name=name)
        try:
            self._register_all(plugin, info)
        except BaseException as exc:
            self.pm.unregister(name=name)
            if isinstance(exc, PluginError):
                raise
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise PluginError(f"plugin {name!r} failed while registering: {type(exc).__name__}: {exc}") from exc
        self.infos[name] = info
        return info

    def extend_cli(self, cli: Any) -> None:
        """Let plugins add click commands; a failing plugin is reported and skipped."""
        for name, plugin in self.pm.list_name_plugin():
            if hasattr(plugin, "diana_cli"):
                try:
                    plugin.diana_cli(cli=cli)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - a plugin bug (even sys.exit) must not break the CLI
                    warnings.warn(f"diana plugin {name!r} failed to add commands: {exc!r}", stacklevel=2)


def _selected() -> set[str] | None:
    raw = os.environ.get("DIANA_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


CORE = "core"
FIRST_PARTY = "diana-dicom"


def _first_party(ep: metadata.EntryPoint) -> bool:
    dist = ep.dist.name if ep.dist else ""
    return dist == FIRST_PARTY or dist.startswith(FIRST_PARTY + "-")


def load_plugins(entry_points: bool = True) -> DianaPlugins:
    """A fresh plugin manager with the core plugin and (unless disabled) every installed entry point."""
    pm = pluggy.PluginManager("diana")
    pm.add_hookspecs(hookspecs)
    plugins = DianaPlugins(pm=pm)
    found = list(metadata.entry_points(group="diana"))
    core = [ep for ep in found if ep.name == CORE and _first_party(ep)]
    if core:
        _load(plugins, core[0])
    else:  # running from a source tree whose metadata predates the entry point (reinstall to fix)
        ep = metadata.EntryPoint(name=CORE, value="diana_core.builtin_plugin", group="diana")
        plugins.add(ep.load(), name=CORE, dist=FIRST_PARTY, version=_version(FIRST_PARTY))
    if not entry_points:
        return plugins
    wanted = _selected()
    others = [ep for ep in found if not any(ep is c for c in core) and (wanted is None or ep.name in wanted)]
    others.sort(key=lambda ep: (not _first_party(ep), ep.name))  # first party first: it keeps its ctypes
    for ep in others:
        _load(plugins, ep)
    if wanted:
        missing = sorted(wanted - {ep.name for ep in found})
        if missing:
            installed = ", ".join(sorted({ep.name for ep in found} - {CORE})) or "none"
            warnings.warn(f"DIANA_PLUGINS names {', '.join(missing)}, not installed; installed plugins: {installed}",
                          stacklevel=2)
    return plugins


def _load(plugins: DianaPlugins, ep: metadata.EntryPoint) -> None:
    """Import one entry point and register it; any failure (even ``sys.exit``) is recorded, never raised."""
    dist = ep.dist.name if ep.dist else "?"
    version = ep.dist.version if ep.dist else "?"
    try:
        module = ep.load()
        plugins.add(module, name=ep.name, dist=dist, version=version)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - one broken plugin must not take the host down
        message = f"{type(exc).__name__}: {exc}"
        plugins.infos[ep.name] = PluginInfo(name=ep.name, dist=dist, version=version, error=message)
        warnings.warn(f"diana plugin {ep.name!r} ({dist}) failed to load: {message}", stacklevel=3)


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


def check_profile(profile: Any) -> None:
    """Refuse (ConfigError with the install line) a profile whose options need a plugin that is not installed."""
    if profile is not None and profile.has("clean-pixels"):
        get_plugin_manager().pixel_cleaner()
