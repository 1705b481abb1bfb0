"""``diana do SERVICE METHOD [ARGS]``: call any public method of an endpoint (the original's ``do`` verb)."""

from __future__ import annotations

from typing import Any

import click

from diana_core.cli.context import CliState, pass_state


def _value(text: str) -> Any:
    """A command-line value read as YAML (numbers, booleans, lists, mappings), a plain string otherwise."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _positional(text: str, n: int) -> Any:
    """ARGS: a JSON/YAML mapping or list ('{"AccessionNumber": "A1"}') is parsed as -k values are; anything else
    stays a string (ids such as 00123 must not become numbers). A mapping that does not parse is refused."""
    import yaml

    if not text.lstrip().startswith(("{", "[")):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        raise click.BadParameter(f"argument {n} is not a valid JSON/YAML mapping or list{where}",
                                 param_hint="ARGS") from None


@click.command("do", context_settings={"ignore_unknown_options": False})
@click.argument("service")
@click.argument("method")
@click.argument("args", nargs=-1)
@click.option("-k", "--kwarg", "kwargs", multiple=True, metavar="KEY=VALUE",
              help="Keyword argument (value read as YAML: 3, true, [a, b]). Repeatable.")
@pass_state
def do_cmd(state: CliState, service: str, method: str, args: tuple[str, ...], kwargs: tuple[str, ...]) -> None:
    """Call METHOD of SERVICE with ARGS and -k KEY=VALUE options; print what it returns. ARGS are strings, except a
    JSON/YAML mapping or list ('{AccessionNumber: A1}'), which is parsed.

    \b
    Examples:
      diana -s services.yml do pacs statistics
      diana -s services.yml do pacs inventory -k level=series
      diana -s services.yml do registry sget ACC123
      diana -s services.yml do pacs find '{"AccessionNumber": "A123"}' -k level=studies
    """
    from diana_core.dixel import Dixel

    if method.startswith("_"):
        raise click.BadParameter("private methods cannot be called", param_hint="METHOD")
    options: dict[str, Any] = {}
    for term in kwargs:
        key, sep, value = term.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{term!r} must be KEY=VALUE", param_hint="-k")
        options[key] = _value(value)
    endpoint = state.endpoint(service)
    func = getattr(endpoint, method, None)
    if func is None or not callable(func) or isinstance(getattr(type(endpoint), method, None), property):
        public = sorted(m for m in dir(endpoint) if not m.startswith("_") and callable(getattr(endpoint, m, None)))
        raise click.BadParameter(f"{type(endpoint).__name__} has no method {method!r}; methods: {', '.join(public)}",
                                 param_hint="METHOD")
    values = [_positional(text, n) for n, text in enumerate(args, start=1)]
    try:
        result = func(*values, **options)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:  # the call itself: wrong arguments
            raise click.UsageError(f"{method}: {exc}") from None
        raise
    if hasattr(result, "__next__"):  # a lazy find(): list it
        result = list(result)

    def render(value: Any) -> Any:
        if isinstance(value, Dixel):
            return {"level": str(value.level), "meta": value.meta, "tags": value.tags}
        if isinstance(value, list | tuple | set):
            return [render(v) for v in value]
        return value

    state.emit(render(result))
