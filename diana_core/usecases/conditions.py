"""Conditions of routing rules as data: a ``when:`` mapping compiled once into tests on an element's values, and the
``Facts`` of one event they look at (the association, the tags the event carried, the header read only if needed).
The grammar and each error message are in docs/routes.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attrs import define, field

from diana_core.errors import ConfigError

ASSOCIATION_KEYS = ("CallingAET", "CalledAET", "PeerAddress")
"""Facts of the association an instance came on (receiver sources); other keys are header keywords."""

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
