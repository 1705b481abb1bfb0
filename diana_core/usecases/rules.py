"""Routing rules: a routes file's entries compiled once at load into ``Rule`` objects whose ``when:`` conditions are
plain data (equality, any-of lists, ``~regex``, ``!`` negation, ``>=``/``<=``/``>``/``<`` on numbers and dates,
``{exists: true}``) tested against an instance header and the association it came on.

``RuleSet.route`` is the one evaluator: the watch daemon and ``diana routes test`` both call it. The grammar and each
error message are in docs/routes.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from attrs import define, field

from diana_core.errors import ConfigError
from diana_core.ports import EventType

ASSOCIATION_KEYS = ("CallingAET", "CalledAET", "PeerAddress")
"""Facts of the association an instance came on (receiver sources); other keys are header keywords."""

RULE_KEYS = ("name", "source", "handler", "dest", "options", "event", "when", "otherwise", "on", "stop")
LEVELS = ("instance", "stable-study", "stable-series")
NO_DEST = {"-", "none", "null", ""}
DEFAULT_HANDLER = "put_item"
OPERATORS = ("exists", "not", ">=", "<=", ">", "<")

_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_HEX_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")

Test = Callable[[list[str]], bool]


# --- facts ---------------------------------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, str | int | float):
        return str(value).strip()
    if type(value).__name__ == "PersonName":  # pydicom's; read by duck type, the core imports no backend
        return str(value).strip()
    return None


def normalize(value: Any) -> list[str]:
    """An element's value as strings: one per value of a multi-valued element, none when absent or empty;
    a sequence counts as present with an opaque value per item (only ``exists`` is meaningful on it)."""
    if value is None:
        return []
    if hasattr(value, "value") and not isinstance(value, str | int | float):  # a DataElement
        value = value.value
    if isinstance(value, str | bytes | bytearray):
        text = _text(value)
        return [text] if text else []
    if isinstance(value, Iterable):
        out: list[str] = []
        for item in value:
            text = _text(item)
            out.append(text if text is not None else "(item)")
        return [v for v in out if v]
    text = _text(value)
    return [text] if text else ([] if text is not None else ["(value)"])


class Facts:
    """What conditions look at for one event: the association, the tags the event carried, and the header, read
    (once, header-only) only when a condition asks for a key the event did not carry."""

    def __init__(self, tags: Mapping[str, Any] | None = None, load: Callable[[], Any] | None = None,
                 association: Mapping[str, Any] | None = None) -> None:
        self.tags, self.load, self.association = dict(tags or {}), load, dict(association or {})
        self._header: Any = None
        self.header_reads = 0

    def header(self) -> Any:
        if self._header is None and self.load is not None:
            self.header_reads += 1
            self._header = self.load()
            if self._header is None:
                self._header = {}
        return self._header if self._header is not None else {}

    def values(self, key: str) -> list[str]:
        if key in ASSOCIATION_KEYS:
            return normalize(self.association.get(key))
        if key in self.tags:
            return normalize(self.tags[key])
        return normalize(_lookup(self.header(), key))


def _lookup(header: Any, key: str) -> Any:
    hexed = _HEX_TAG.match(key)
    if isinstance(header, Mapping):
        return header.get(key)
    if hexed:
        getter = getattr(header, "get", None)
        return getter(int(hexed.group(1) + hexed.group(2), 16)) if getter else None
    return getattr(header, key, None)


# --- conditions ----------------------------------------------------------------------------------------------------
def _number(text: str, date: bool) -> float | None:
    text = text.strip()
    if date:  # DA "20200101", DT "20200101120000.0", the old "2020.01.01": the first 8 digits
        text = re.sub(r"\D", "", text)[:8]
        if len(text) < 8:
            return None
    try:
        return float(text)
    except ValueError:
        return None


def _equals(expected: str) -> Test:
    target = _number(expected, date=False)

    def test(values: list[str]) -> bool:
        for value in values:
            if value == expected:
                return True
            if target is not None and _number(value, date=False) == target:
                return True
        return False

    return test


def _compare(op: str, operand: Any, where: str) -> Test:
    text = str(operand).strip()
    date = bool(_DATE.match(text))
    bound = _number(text, date)
    if isinstance(operand, bool) or bound is None:
        raise ConfigError(f"{where}: {op} needs a number or a date (YYYYMMDD or YYYY-MM-DD), not {operand!r}")
    ops: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
    check = ops[op]

    def test(values: list[str]) -> bool:
        for value in values:
            number = _number(value, date)
            if number is not None and check(number, bound):
                return True
        return False

    return test


def _regex(pattern: str, where: str) -> Test:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}: bad regex {pattern!r}: {exc}") from None
    return lambda values: any(compiled.search(v) for v in values)


def _negate(inner: Test) -> Test:
    return lambda values: not inner(values)


def compile_test(spec: Any, where: str) -> Test:
    """A test on an element's values from its written form (see docs/routes.md); ConfigError naming ``where``."""
    if isinstance(spec, bool) or spec is None:
        raise ConfigError(f"{where}: {spec!r} is not a value to compare with; for presence write {{exists: true}}")
    if isinstance(spec, int | float):
        return _equals(str(spec))
    if isinstance(spec, str):
        if spec.startswith("!"):
            return _negate(compile_test(spec[1:], where))
        if spec.startswith("~"):
            return _regex(spec[1:], where)
        for op in (">=", "<=", ">", "<"):
            if spec.startswith(op):
                return _compare(op, spec[len(op):], where)
        return _equals(spec[1:] if spec.startswith("=") else spec)
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: an empty list matches nothing")
        tests = [compile_test(item, where) for item in spec]
        return lambda values: any(t(values) for t in tests)
    if isinstance(spec, Mapping):
        return _compile_mapping(spec, where)
    raise ConfigError(f"{where}: {type(spec).__name__} {spec!r} is not a condition")


def _compile_mapping(spec: Mapping[str, Any], where: str) -> Test:
    unknown = [k for k in spec if k not in OPERATORS]
    if unknown or not spec:
        raise ConfigError(f"{where}: unknown operator {(unknown or ['{}'])[0]!r}; known: {', '.join(OPERATORS)}")
    tests: list[Test] = []
    for op, operand in spec.items():
        if op == "exists":
            if not isinstance(operand, bool):
                raise ConfigError(f"{where}: exists takes true or false, not {operand!r}")
            tests.append((lambda values: bool(values)) if operand else (lambda values: not values))
        elif op == "not":
            tests.append(_negate(compile_test(operand, where)))
        else:
            tests.append(_compare(op, operand, where))
    return lambda values: all(t(values) for t in tests)


@define(frozen=True)
class Condition:
    """One ``when:`` entry: a key (header keyword, hex tag or association fact), as written, and its test."""

    key: str
    spec: Any
    test: Test = field(eq=False, repr=False)

    def __call__(self, facts: Facts) -> bool:
        return self.test(facts.values(self.key))

    def written(self) -> str:
        return f"{self.key}={self.spec!r}"


def compile_when(when: Any, where: str) -> tuple[Condition, ...]:
    """The conditions of a ``when:`` mapping, each compiled once."""
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"{where}: when must be a mapping of keys to conditions, e.g. {{Modality: CT}}")
    conditions = []
    for key, spec in when.items():
        key = str(key)
        if not (_KEYWORD.match(key) or _HEX_TAG.match(key)):
            raise ConfigError(f"{where}: {key!r} is not a DICOM keyword, a tag (gggg,eeee) or one of "
                              f"{', '.join(ASSOCIATION_KEYS)}")
        conditions.append(Condition(key, _freeze(spec), compile_test(spec, f"{where} {key}")))
    return tuple(conditions)


def _freeze(spec: Any) -> Any:
    if isinstance(spec, list):
        return tuple(_freeze(s) for s in spec)
    if isinstance(spec, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in spec.items()))
    return spec


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
