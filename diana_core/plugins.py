"""Plugin manager: discovers ``diana`` entry points, loads each one separately, validates what they register.

A broken plugin is reported (``diana plugins``, a warning) and the others still load; nothing a plugin does at
import (an exception, ``sys.exit()``) stops the host. A plugin is accepted or refused whole: a refused plugin leaves
no ctype or handler behind. First-party distributions (``diana-dicom*``) load before third-party ones, so a
third-party plugin can never take a first-party ctype. The core's own plugin is an entry point like any other
(``core``, in the ``diana-dicom`` distribution). ``DIANA_PLUGINS`` set to a comma-separated list of entry-point
names loads only those (empty: none but the core).

Loading is lazy (``get_plugin_manager``): a distribution lists what its plugin provides in entry-point metadata
(groups ``diana.ctypes``, ``diana.handlers``, ``diana.commands``: name = the ctype, handler or command, value = the
plugin's ``diana`` entry point), read without importing anything, so a command imports only the plugins whose ctypes,
handlers or commands it uses. A plugin without that manifest is loaded whenever something unknown is asked for.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

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
    "MockSite": "mock", "MockDevice": "mock", "Splunk": "splunk",
}

# what a plugin's manifest may list: kind -> entry-point group
MANIFEST_GROUPS = {"ctypes": "diana.ctypes", "handlers": "diana.handlers", "commands": "diana.commands",
                   "pixel_cleaners": "diana.pixel_cleaners"}


@define
class PluginInfo:
    """What one plugin distribution brought (or, not loaded yet, what its manifest declares)."""

    name: str
    dist: str
    version: str
    ctypes: list[str] = field(factory=list)
    handlers: list[str] = field(factory=list)
    pixel_cleaners: list[str] = field(factory=list)
    error: str | None = None
    commands: list[str] = field(factory=list)
    loaded: bool = True


@define
class _Pending:
    """An entry point not imported yet and its manifest (None: it has none, so it declares nothing)."""

    ep: metadata.EntryPoint
    manifest: dict[str, list[str]] | None
    module: Any = None
    cli_done: bool = False


@define
class DianaPlugins:
    """The loaded plugins and their registrations; declared-but-unloaded plugins load on first use."""

    pm: pluggy.PluginManager
    endpoints: dict[str, type] = field(factory=dict)
    handlers: dict[str, Callable[..., Any]] = field(factory=dict)
    pixel_cleaners: dict[str, Callable[[], Any]] = field(factory=dict)
    infos: dict[str, PluginInfo] = field(factory=dict)
    _owner: dict[str, str] = field(factory=dict)
    _built: dict[str, Any] = field(factory=dict)
    _pending: dict[str, _Pending] = field(factory=dict)
    _declared: dict[str, str] = field(factory=dict)  # "ctypes:Orthanc" -> plugin name, first declaration wins
    _cli_done: set[tuple[int, str]] = field(factory=set)  # (id of the click group, plugin) already asked
    _lock: threading.RLock = field(factory=threading.RLock)

    def endpoint_class(self, ctype: str, service_name: str | None = None) -> type:
        """The class for a ctype; ConfigError saying what is installed and which extra to add."""
        with self._lock:
            self._provide("ctypes", ctype)
            try:
                return self.endpoints[ctype]
            except KeyError:
                pass
        from diana_core.ports import Serializable  # attrs/cattrs machinery: not needed by --help

        registered = Serializable.registered(ctype)
        if registered is not None:
            return registered
        where = f" in service {service_name!r}" if service_name else ""
        owner = self._declared.get(f"ctypes:{ctype}")
        if owner is not None and self.infos[owner].error:
            raise ConfigError(f"ctype {ctype!r}{where} comes with plugin {owner!r}, which is broken: "
                              f"{self.infos[owner].error}")
        known = ", ".join(sorted(self.known("ctypes"))) or "none"
        extra = KNOWN_EXTRAS.get(ctype)
        advice = f"install it with: pip install 'diana-dicom[{extra}]'" if extra else "is its plugin installed?"
        raise ConfigError(f"unknown ctype {ctype!r}{where}; installed ctypes: {known}; {advice}")

    def pixel_cleaner(self) -> Any:
        """The ``clean-pixels`` cleaner (a ``PixelCleaner``, built once); ConfigError with the install line."""
        from diana_core.pixels import PIXELS_INSTALL

        with self._lock:
            for key, owner in list(self._declared.items()):
                if key.startswith("pixel_cleaners:"):
                    self._activate(owner)
            if not self.pixel_cleaners:
                self._load_undeclared()
            if not self.pixel_cleaners:
                raise ConfigError(f"profile option clean-pixels needs the pixels plugin: {PIXELS_INSTALL}")
            name = sorted(self.pixel_cleaners)[0]
            if name not in self._built:
                self._built[name] = self.pixel_cleaners[name]()
            return self._built[name]

    def has_handler(self, name: str) -> bool:
        """Whether an installed plugin provides route handler ``name`` (loading that plugin)."""
        with self._lock:
            self._provide("handlers", name)
            return name in self.handlers

    def handler(self, name: str) -> Callable[..., Any]:
        if self.has_handler(name):
            return self.handlers[name]
        known = ", ".join(sorted(self.known("handlers"))) or "none"
        raise ConfigError(f"unknown route handler {name!r}; installed handlers: {known}")

    def known(self, kind: str) -> set[str]:
        """Every ctype / handler / command name installed: registered, declared, or from plugins without manifest."""
        with self._lock:
            self._load_undeclared()
            names = {key.partition(":")[2] for key in self._declared if key.startswith(kind + ":")}
            for info in self.infos.values():
                names.update(getattr(info, kind))
            return names

    def load_all(self) -> DianaPlugins:
        """Import and register every plugin now (what eager loading does); returns self."""
        with self._lock:
            for name in list(self._pending):
                self._activate(name)
        return self

    def _provide(self, kind: str, name: str) -> None:
        """Load the plugin that declares ``name``, or (not declared anywhere) every plugin without a manifest."""
        owner = self._declared.get(f"{kind}:{name}")
        if owner is not None:
            self._activate(owner)
        elif not (name in self.endpoints if kind == "ctypes" else name in self.handlers):
            self._load_undeclared()

    def _load_undeclared(self) -> None:
        for name, pending in list(self._pending.items()):
            if pending.manifest is None:
                self._activate(name)

    def _import(self, name: str) -> Any:
        """The plugin's entry module (imported once); None when it failed (recorded as BROKEN, never raised)."""
        pending = self._pending[name]
        if pending.module is None and self.infos[name].error is None:
            try:
                pending.module = pending.ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - one broken plugin must not take the host down
                self._broken(name, f"{type(exc).__name__}: {exc}", "failed to load")
        return pending.module

    def _activate(self, name: str) -> None:
        """Import a pending plugin and register its endpoints and handlers (refused whole on any problem)."""
        pending = self._pending.get(name)
        if pending is None:
            return
        module = self._import(name)
        self._pending.pop(name, None)  # (already gone when the import failed)
        if module is None:
            return
        info = self.infos[name]
        try:
            self.add(module, name=name, dist=info.dist, version=info.version, manifest=pending.manifest)
        except PluginError as exc:
            self._broken(name, str(exc), "refused")

    def _broken(self, name: str, message: str, what: str) -> None:
        info = self.infos[name]
        self.infos[name] = PluginInfo(name=name, dist=info.dist, version=info.version, error=message)
        self._pending.pop(name, None)
        warnings.warn(f"diana plugin {name!r} ({info.dist}) {what}: {message}", stacklevel=4)

    def _register_all(self, plugin: Any, info: PluginInfo) -> None:
        """Collect what the plugin registers, validate it all, then commit it all (or nothing)."""
        endpoints: dict[str, type] = {}
        handlers: dict[str, Callable[..., Any]] = {}

        def taken(key: str, what: str) -> None:
            owner = self._owner.get(key) or self._declared.get(key)
            if owner is not None and owner != info.name:
                raise PluginError(f"{what} is provided by both {owner!r} and {info.name!r}")

        def reg_endpoint(ctype: str, cls: type) -> None:
            if not isinstance(cls, type):
                raise PluginError(f"plugin {info.name!r} registered {ctype!r} with a non-class {cls!r}")
            if self.endpoints.get(ctype) is not cls:
                taken(f"ctypes:{ctype}", f"ctype {ctype!r}")
            endpoints[ctype] = cls

        def reg_handler(name: str, func: Callable[..., Any]) -> None:
            if not callable(func):
                raise PluginError(f"plugin {info.name!r} registered handler {name!r} with a non-callable")
            if self.handlers.get(name) is not func:
                taken(f"handlers:{name}", f"handler {name!r}")
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
            self._owner[f"ctypes:{ctype}"] = info.name
            info.ctypes.append(ctype)
        for name, func in handlers.items():
            self.handlers[name] = func
            self._owner[f"handlers:{name}"] = info.name
            info.handlers.append(name)
        self.pixel_cleaners.update(cleaners)
        info.pixel_cleaners.extend(cleaners)

    def add(self, plugin: Any, name: str, dist: str = "diana-dicom", version: str = "",
            manifest: dict[str, list[str]] | None = None) -> PluginInfo:
        """Register one plugin object (module or instance); PluginError (nothing registered) when refused.

        With a ``manifest`` the plugin must register exactly the ctypes and handlers it declares.
        """
        info = PluginInfo(name=name, dist=dist, version=version,
                          commands=list(manifest["commands"]) if manifest else [])
        self.pm.register(plugin, name=name)
        try:
            self._register_all(plugin, info)
            if manifest is not None:
                _check_manifest(info, manifest)
        except BaseException as exc:
            self.pm.unregister(name=name)
            for key in [k for k, owner in self._owner.items() if owner == name]:
                kind, _, item = key.partition(":")
                (self.endpoints if kind == "ctypes" else self.handlers).pop(item, None)
                del self._owner[key]
            for cleaner in info.pixel_cleaners:
                self.pixel_cleaners.pop(cleaner, None)
            if isinstance(exc, PluginError | KeyboardInterrupt):
                raise
            raise PluginError(f"plugin {name!r} failed while registering: {type(exc).__name__}: {exc}") from exc
        self.infos[name] = info
        return info

    def extend_cli(self, cli: Any, command: str | None = None) -> None:
        """Let plugins add click commands: the one declaring ``command``, else all; a failing plugin is skipped."""
        with self._lock:
            owner = self._declared.get(f"commands:{command}") if command else None
            if owner is not None:
                names = [owner]
            else:
                self._load_undeclared()
                names = [n for n, p in self._pending.items() if p.manifest and p.manifest["commands"]]
                names += [n for n, _ in self.pm.list_name_plugin()]
            for name in names:
                if (id(cli), name) in self._cli_done:
                    continue
                self._cli_done.add((id(cli), name))
                plugin = self._import(name) if name in self._pending else self.pm.get_plugin(name)
                if plugin is None or not hasattr(plugin, "diana_cli"):
                    continue
                try:
                    plugin.diana_cli(cli=cli)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - a plugin bug (even sys.exit) must not break the CLI
                    warnings.warn(f"diana plugin {name!r} failed to add commands: {exc!r}", stacklevel=2)

    def _declare(self, ep: metadata.EntryPoint, manifest: dict[str, list[str]] | None,
                 facts: Facts) -> None:
        """Record an entry point (not imported) and what its manifest says it provides."""
        dist, version = facts(ep, "?")
        declared = manifest or {k: [] for k in MANIFEST_GROUPS}
        self.infos[ep.name] = PluginInfo(name=ep.name, dist=dist, version=version, ctypes=list(declared["ctypes"]),
                                         handlers=list(declared["handlers"]),
                                         commands=list(declared["commands"]),
                                         pixel_cleaners=list(declared["pixel_cleaners"]), loaded=False)
        self._pending[ep.name] = _Pending(ep=ep, manifest=manifest)
        for kind, names in (manifest or {}).items():
            for item in names:
                self._declared.setdefault(f"{kind}:{item}", ep.name)


def _check_manifest(info: PluginInfo, manifest: dict[str, list[str]]) -> None:
    for kind in ("ctypes", "handlers", "pixel_cleaners"):
        if sorted(getattr(info, kind)) != sorted(manifest[kind]):
            raise PluginError(f"plugin {info.name!r} registered {kind} {sorted(getattr(info, kind))} but its "
                              f"entry-point metadata ({MANIFEST_GROUPS[kind]}) declares {sorted(manifest[kind])}; "
                              "reinstall it (stale metadata) or fix its pyproject.toml")


class Facts(Protocol):
    def __call__(self, ep: metadata.EntryPoint, missing: str = "") -> tuple[str, str]:
        """(distribution name, version) of an entry point; ``missing`` for both when it has no distribution."""


def _manifests(everything: Any, facts: Facts) -> dict[tuple[str, str], dict[str, list[str]]]:
    """(distribution, plugin module) -> {"ctypes": [...], "handlers": [...], "commands": [...]} from metadata.

    ``everything`` has ``select(group=...)``: ``metadata.entry_points()`` or a ``plugin_cache.EntryPointScan``.
    """
    out: dict[tuple[str, str], dict[str, list[str]]] = {}
    for kind, group in MANIFEST_GROUPS.items():
        for ep in everything.select(group=group):
            key = (facts(ep)[0], ep.value)
            out.setdefault(key, {k: [] for k in MANIFEST_GROUPS})[kind].append(ep.name)
    return out


def _selected() -> set[str] | None:
    raw = os.environ.get("DIANA_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


CORE = "core"
FIRST_PARTY = "diana-dicom"


def _first_party(ep: metadata.EntryPoint, facts: Facts) -> bool:
    dist = facts(ep)[0]
    return dist == FIRST_PARTY or dist.startswith(FIRST_PARTY + "-")


def load_plugins(entry_points: bool = True, lazy: bool = False) -> DianaPlugins:
    """A fresh plugin manager with the core plugin and (unless disabled) every installed entry point.

    ``lazy``: import a plugin only when one of its declared ctypes, handlers or commands is used.
    """
    pm = pluggy.PluginManager("diana")
    pm.add_hookspecs(hookspecs)
    plugins = DianaPlugins(pm=pm)
    from diana_core.plugin_cache import scan

    everything = facts = scan(("diana", *MANIFEST_GROUPS.values()))  # the distributions' metadata, read once
    found = everything.select(group="diana")
    manifests = _manifests(everything, facts)
    core = [ep for ep in found if ep.name == CORE and _first_party(ep, facts)]
    if core:
        plugins._declare(core[0], manifests.get((FIRST_PARTY, core[0].value)), facts)
    else:  # running from a source tree whose metadata predates the entry point (reinstall to fix)
        ep = metadata.EntryPoint(name=CORE, value="diana_core.builtin_plugin", group="diana")
        plugins.add(ep.load(), name=CORE, dist=FIRST_PARTY, version=_version(FIRST_PARTY))
    if entry_points:
        wanted = _selected()
        others = [ep for ep in found if not any(ep is c for c in core) and (wanted is None or ep.name in wanted)]
        others.sort(key=lambda ep: (not _first_party(ep, facts), ep.name))  # first party first: it keeps its ctypes
        for ep in others:
            plugins._declare(ep, manifests.get((facts(ep)[0], ep.value)), facts)
        if wanted:
            missing = sorted(wanted - {ep.name for ep in found})
            if missing:
                installed = ", ".join(sorted({ep.name for ep in found} - {CORE})) or "none"
                warnings.warn(f"DIANA_PLUGINS names {', '.join(missing)}, not installed; installed plugins: "
                              f"{installed}", stacklevel=2)
    return plugins if lazy else plugins.load_all()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+unknown"


_lock = threading.Lock()
_current: DianaPlugins | None = None


def get_plugin_manager() -> DianaPlugins:
    """The process-wide plugins, found once on first use; each is imported when first needed."""
    global _current
    with _lock:
        if _current is None:
            _current = load_plugins(lazy=True)
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
