"""Strict keyword arguments: the one check route handlers, route options and every endpoint's ``put`` go through.

A keyword a function does not know is refused with one line naming the ones it does, never swallowed by
``**kwargs`` (a misspelt ``anonymizing=True`` once uploaded identified originals). Old spellings of the API
reference are declared aliases. ``Endpoint`` applies ``strict`` to each subclass's ``put``; handlers use the
decorator; ``mk_route`` checks a routes file's options with ``check_keywords`` before anything runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from diana_core.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

KEYWORDS = "__diana_keywords__"  # frozenset of accepted keyword names (aliases included) on a strict function
ALIASES = "__diana_aliases__"  # alias -> keyword
FORWARDS = "__diana_forwards__"  # name of the dest method that receives a handler's other keywords ("put")
_NOT_OPTIONS = frozenset({"self", "item"})
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def declared(func: Callable[..., Any]) -> frozenset[str] | None:
    """Keywords ``func`` accepts: its named parameters (and aliases) when strict or closed; None when it takes
    ``**kwargs`` without declaring them (an open function: nothing can be checked)."""
    known = getattr(func, KEYWORDS, None)
    if known is not None:
        return frozenset(known)
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return _named(func)


def _named(func: Callable[..., Any]) -> frozenset[str]:
    """The keyword parameters ``func`` names (``**kwargs`` aside: a strict function accepts only those)."""
    params = inspect.signature(func).parameters.values()
    return frozenset(p.name for p in params if p.kind in _NAMED and p.name not in _NOT_OPTIONS)


def check_keywords(where: str, given: Iterable[str], known: Iterable[str]) -> None:
    """ConfigError naming the unknown keywords in ``given`` and every known one, in one line."""
    known = sorted(set(known) - _NOT_OPTIONS)
    unknown = sorted(set(given) - set(known))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(f"{where}: unknown keyword argument{plural} {', '.join(unknown)}; known: "
                          f"{', '.join(known) or 'none'}")


def renamed(where: str, kwargs: dict[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """``kwargs`` with each alias spelled as the keyword it stands for (both given with different values: an error)."""
    for alias, name in aliases.items():
        if alias in kwargs:
            value = kwargs.pop(alias)
            if name in kwargs and kwargs[name] != value:
                raise ConfigError(f"{where}: {alias}= is another spelling of {name}=; give one of them")
            kwargs[name] = value
    return kwargs


def handler_keywords(handler: Callable[..., Any], dest: Any = None, source: Any = None) -> frozenset[str] | None:
    """Keywords a route handler takes with this dest bound: its own, plus what the dest method it forwards the rest
    to accepts (``put``; ``send`` on the source for a peer name). None when that target is open."""
    own = declared(handler)
    target = getattr(handler, FORWARDS, None)
    if own is None or target is None:
        return own
    method = getattr(source, "send", None) if isinstance(dest, str) else getattr(dest, target, None)
    if method is None:
        return own
    extra = declared(method)
    return None if extra is None else own | extra


def strict(func: F | None = None, *, aliases: Mapping[str, str] | None = None, forwards: str | None = None,
           where: Callable[[tuple[Any, ...]], str] | None = None) -> Any:
    """Make ``func`` refuse keywords it does not name (aliases renamed first); usable bare or with options.

    ``forwards="put"`` marks a route handler that hands its other keywords to ``dest.put``: those are checked
    against that put's own keywords. ``where(args)`` names the callee in the message (default: its name).
    """
    def wrap(f: F) -> F:
        if getattr(f, KEYWORDS, None) is not None:
            return f  # already strict (attrs rebuilds slotted classes: __init_subclass__ sees the method twice)
        names = _named(f)
        alias_map = dict(aliases or {})
        known = names | frozenset(alias_map)
        signature = inspect.signature(f)

        @functools.wraps(f)
        def checked(*args: Any, **kwargs: Any) -> Any:
            label = where(args) if where else f"{f.__name__}()"
            if alias_map:
                kwargs = renamed(label, kwargs, alias_map)
            extra = set(kwargs) - names
            if extra:
                allowed: frozenset[str] | None = names
                if forwards is not None:  # source and dest may come positionally: handler(item, source, dest)
                    bound = {**signature.bind_partial(*args).arguments, **kwargs}
                    allowed = handler_keywords(checked, bound.get("dest"), bound.get("source"))
                if allowed is not None:
                    check_keywords(label, extra, allowed | frozenset(alias_map))
            return f(*args, **kwargs)

        setattr(checked, KEYWORDS, known)
        setattr(checked, ALIASES, alias_map)
        setattr(checked, FORWARDS, forwards)
        return checked  # type: ignore[return-value]

    return wrap(func) if func is not None else wrap
