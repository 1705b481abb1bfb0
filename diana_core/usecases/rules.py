"""Routing rules: a routes file's entries compiled once at load into ``Rule`` objects whose ``when:`` conditions
(diana_core.usecases.conditions: equality, any-of lists, ``~regex``, ``!`` negation, ``>=``/``<=``/``>``/``<`` on
numbers and dates, ``{exists: true}``) are tested against an instance header and the association it came on.

``RuleSet.route`` is the one evaluator: the watch daemon and ``diana routes test`` both call it. The grammar and each
error message are in docs/routes.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import define, field

from diana_core.errors import ConfigError
from diana_core.ports import EventType
from diana_core.usecases.conditions import ASSOCIATION_KEYS, Condition, Facts, compile_when

__all__ = ["ASSOCIATION_KEYS", "Facts", "Rule", "RuleSet", "compile_rule", "level_of", "load_routes_file"]

RULE_KEYS = ("name", "source", "handler", "dest", "options", "event", "when", "otherwise", "on", "stop")
LEVELS = ("instance", "stable-study", "stable-series")
NO_DEST = {"-", "none", "null", ""}
DEFAULT_HANDLER = "put_item"


# --- rules ---------------------------------------------------------------------------------------------------------
@define
class Rule:
    """One entry of a routes file: which events of ``source`` (at ``level``) it takes and where they go."""

    name: str
    source: str
    handler: str = DEFAULT_HANDLER
    dests: tuple[str, ...] = ()
    options: dict[str, Any] = field(factory=dict)
    event: str | None = None
    level: str = "instance"
    conditions: tuple[Condition, ...] = ()
    otherwise: bool = False
    stop: bool = False
    explicit_level: bool = False  # `on:` or `event:` given; otherwise the daemon takes the handler's event

    def matches(self, facts: Facts) -> bool:
        return all(condition(facts) for condition in self.conditions)

    @property
    def keys(self) -> set[str]:
        return {c.key for c in self.conditions}


def compile_rule(entry: Any, index: int) -> Rule:
    """A Rule from one routes-file entry (today's {handler, source, dest[, event, options]} form included)."""
    where = f"route #{index + 1}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: must be a mapping with at least 'source', not {type(entry).__name__}")
    # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean true: it is this rule's `on`
    entry = {("on" if k is True else k): v for k, v in entry.items()}
    name = entry.get("name")
    where = f"route {name!r}" if name else where
    unknown = [k for k in entry if k not in RULE_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(RULE_KEYS)}")
    if not isinstance(entry.get("source"), str) or not entry["source"]:
        raise ConfigError(f"{where}: needs 'source' (a service name or folder)")
    handler = entry.get("handler") or DEFAULT_HANDLER
    dests = _dests(entry.get("dest"), where)
    options = entry.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{where}: options must be a mapping")
    on, event = entry.get("on"), entry.get("event")
    if on is not None and event is not None:
        raise ConfigError(f"{where}: give 'on' or 'event', not both")
    if on is not None and on not in LEVELS:
        raise ConfigError(f"{where}: on must be one of {', '.join(LEVELS)}, not {on!r}")
    otherwise, stop = entry.get("otherwise", False), entry.get("stop", False)
    for key, value in (("otherwise", otherwise), ("stop", stop)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} takes true or false, not {value!r}")
    if otherwise and entry.get("when") is not None:
        raise ConfigError(f"{where}: 'otherwise: true' takes what no rule above took; it cannot also have 'when'")
    level = on if on is not None else (_event_level(event, where) if event is not None else "instance")
    return Rule(name=str(name or f"route{index + 1}"), source=entry["source"], handler=str(handler), dests=dests,
                options=dict(options), event=str(event) if event is not None else None, level=level,
                conditions=compile_when(entry.get("when"), where), otherwise=otherwise, stop=stop,
                explicit_level=on is not None or event is not None)


def _event_level(event: Any, where: str) -> str:
    try:
        return level_of(EventType.from_label(str(event)))
    except (KeyError, ValueError):
        known = ", ".join(sorted({str(e) for e in EventType}))
        raise ConfigError(f"{where}: unknown event {event!r}; known: {known}") from None


def _dests(dest: Any, where: str) -> tuple[str, ...]:
    if dest is None:
        return ()
    items = dest if isinstance(dest, list) else [dest]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{where}: dest must be a service name or a list of them, not {item!r}")
        if item.lower() not in NO_DEST:
            out.append(item)
    if len(set(out)) != len(out):
        raise ConfigError(f"{where}: dest names a service twice")
    return tuple(out)


@define
class RuleSet:
    """The compiled rules of a routes file, in file order."""

    rules: list[Rule] = field(factory=list)

    @classmethod
    def compile(cls, entries: Sequence[Any]) -> RuleSet:
        rules = [compile_rule(entry, i) for i, entry in enumerate(entries)]
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ConfigError(f"route {rule.name!r}: the name is used twice; rules need distinct names")
            seen.add(rule.name)
        return cls(rules)

    def group(self, source: str, level: str) -> list[Rule]:
        return [r for r in self.rules if r.source == source and r.level == level]

    def listens(self, source: str, level: str) -> bool:
        return any(r.source == source and r.level == level for r in self.rules)

    def route(self, source: str, level: str, facts: Facts) -> list[Rule]:
        """The rules that take an event of ``source`` at ``level``: every matching rule in order, a ``stop`` rule
        ending the search; ``otherwise`` rules take it when no other rule above them did."""
        taken: list[Rule] = []
        for rule in self.group(source, level):
            if rule.otherwise:
                hit = not any(not r.otherwise for r in taken)
            else:
                hit = rule.matches(facts)
            if hit:
                taken.append(rule)
                if rule.stop:
                    break
        return taken

    def problems(self) -> list[str]:
        """Rules no event can reach (shadowed by an earlier one); one line each."""
        out = []
        for i, rule in enumerate(self.rules):
            for earlier in self.rules[:i]:
                if (earlier.source, earlier.level) != (rule.source, rule.level):
                    continue
                why = _shadows(earlier, rule)
                if why:
                    out.append(f"route {rule.name!r} is never reached: {why}")
                    break
        return out


def _shadows(earlier: Rule, rule: Rule) -> str | None:
    """Why ``earlier`` keeps every event from ``rule`` (or repeats it), else None."""
    covers = not earlier.otherwise and set(earlier.conditions) <= set(rule.conditions)
    if earlier.stop and (covers or (earlier.otherwise and rule.otherwise)):
        return f"route {earlier.name!r} above takes every event it would and stops (stop: true)"
    if rule.otherwise and not earlier.otherwise and not earlier.conditions:
        return f"route {earlier.name!r} above has no conditions, so nothing is left for 'otherwise'"
    if (not rule.otherwise and not earlier.otherwise and set(earlier.conditions) == set(rule.conditions)
            and earlier.handler == rule.handler and set(earlier.dests) == set(rule.dests)
            and earlier.options == rule.options):
        return f"it repeats route {earlier.name!r} (same conditions, handler and destinations)"
    return None


def level_of(event_type: Any) -> str:
    """The rule level an event type belongs to: ``stable-study``, ``stable-series``, ``instance``, else its label."""
    label = str(event_type)
    return {"study_stable": "stable-study", "series_stable": "stable-series", "instance_added": "instance",
            "file_added": "instance"}.get(label.lower(), label)


def load_routes_file(path: str | Any) -> RuleSet:
    """The compiled rules of a routes file (a list of routes, or a mapping with ``routes:``); ConfigError naming
    the file and the route for every mistake."""
    from pathlib import Path

    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read routes file {str(path)!r}: {exc}") from exc
    if isinstance(data, Mapping) and "routes" in data:
        extra = [k for k in data if k != "routes"]
        if extra:
            raise ConfigError(f"routes file {str(path)!r}: unknown key {extra[0]!r}; known: routes")
        data = data["routes"]
    if not isinstance(data, list):
        raise ConfigError(f"routes file {str(path)!r} must be a list of routes (or a mapping with 'routes:')")
    try:
        return RuleSet.compile(data)
    except ConfigError as exc:
        raise ConfigError(f"routes file {str(path)!r}: {exc}") from None
