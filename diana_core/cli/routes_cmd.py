"""``diana routes check|test``: validate a routes file, and show which rules files would take (the daemon's own
evaluator, nothing sent)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import click

from diana_core.cli import exit_codes
from diana_core.cli.context import CliState, pass_state
from diana_core.errors import ConfigError, DianaError


@click.group("routes")
def routes_group() -> None:
    """Check a routes file (-R of 'diana watch') and try its rules on files."""


def _known_handlers() -> set[str]:
    from diana_core.plugins import get_plugin_manager
    from diana_core.usecases.route_aliases import ALIASES

    return get_plugin_manager().known("handlers") | set(ALIASES)  # declared ones too, without importing them


def _service_problem(name: str, services: Any, role: str, rule: Any) -> str | None:
    from diana_core.services import refuse_original_shortcut

    if name in services.descriptions or name.lower().endswith(".csv"):
        return None
    try:
        refuse_original_shortcut(name)
    except ConfigError as exc:
        return f"route {rule.name!r}: {exc}"
    if os.sep in name or name.startswith(".") or Path(name).is_dir():
        return None
    if role == "dest" and rule.handler == "send_item":
        return None  # a peer or modality the source knows (Sender port)
    known = ", ".join(sorted(services.descriptions)) or "none"
    return f"route {rule.name!r}: unknown {role} service {name!r} (known: {known})"


def check_problems(ruleset: Any, services: Any) -> list[str]:
    """One line per mistake: unknown handlers and services, rules no event reaches."""
    problems = []
    handlers = _known_handlers()
    for rule in ruleset.rules:
        if rule.handler not in handlers:
            problems.append(f"route {rule.name!r}: unknown handler {rule.handler!r} (known: "
                            f"{', '.join(sorted(handlers))})")
        for role, name in [("source", rule.source)] + [("dest", d) for d in rule.dests]:
            problem = _service_problem(name, services, role, rule)
            if problem:
                problems.append(problem)
    return problems + ruleset.problems()


@routes_group.command("check")
@click.argument("routes_file", type=click.Path(exists=True, dir_okay=False))
@pass_state
def check_cmd(state: CliState, routes_file: str) -> None:
    """Validate ROUTES_FILE: conditions (regexes, operators), known handlers and services, no shadowed rules.

    \b
    Exit status: 0 fine; 1 one line per problem was printed.
    """
    from diana_core.usecases.rules import load_routes_file

    ruleset = load_routes_file(routes_file)
    problems = check_problems(ruleset, state.services)
    state.emit({"routes": len(ruleset.rules), "problems": problems},
               "\n".join(problems) if problems else f"{routes_file}: {len(ruleset.rules)} route(s), no problems")
    if problems:
        raise SystemExit(exit_codes.FAILED)


def _resolve_levels(ruleset: Any, services: Any) -> None:
    """Give rules without ``on:``/``event:`` the level the daemon would (the handler's event on that source)."""
    from diana_core.usecases.route_aliases import ALIASES, alias_event
    from diana_core.usecases.routes import event_type_for, resolve
    from diana_core.usecases.routing import ANY_LEVEL
    from diana_core.usecases.rules import level_of

    for rule in ruleset.rules:
        if rule.explicit_level:
            continue
        try:
            source = resolve(rule.source, services, observable=True)
        except DianaError:
            continue  # 'routes check' names it; the rule keeps the instance level
        etype = alias_event(ALIASES[rule.handler], source) if rule.handler in ALIASES else \
            event_type_for(rule.handler, source)
        rule.level = level_of(etype) if etype is not None else ANY_LEVEL


@routes_group.command("test")
@click.argument("routes_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--source", "only_source", default=None, help="Only the rules of this source.")
@click.option("--calling-aet", default=None, help="Association fact CallingAET (as a receiver would see it).")
@click.option("--called-aet", default=None, help="Association fact CalledAET.")
@click.option("--peer", default=None, help="Association fact PeerAddress.")
@pass_state
def test_cmd(state: CliState, routes_file: str, files: tuple[str, ...], only_source: str | None,
             calling_aet: str | None, called_aet: str | None, peer: str | None) -> None:
    """Print which rule(s) each FILE would take, per source and level, with the daemon's evaluator; sends nothing.

    \b
    Example:
      diana -s services.yml routes test routes.yml scans/*.dcm --calling-aet CT1
    Exit status: 0; 1 a file could not be read (named on its line).
    """
    from diana_core.services import build_endpoint
    from diana_core.usecases.routing import association_of
    from diana_core.usecases.rules import ASSOCIATION_KEYS, Facts, load_routes_file

    ruleset = load_routes_file(routes_file)
    _resolve_levels(ruleset, state.services)
    groups = list(dict.fromkeys((r.source, r.level) for r in ruleset.rules
                                if only_source is None or r.source == only_source))
    if not groups:
        raise ConfigError(f"routes file {routes_file!r} has no rule for source {only_source!r}")
    reader = build_endpoint("DcmDir", {"path": "."}, service_name="routes-test")
    association = association_of(calling_aet, called_aet, peer)
    rows, lines, unreadable = [], [], 0
    keys = {c.key for r in ruleset.rules for c in r.conditions if c.key not in ASSOCIATION_KEYS}
    seen_keys: set[str] = set()
    for path in files:  # read as the daemon reads: only as far as the conditions' keys need
        facts = Facts(load=functools.partial(reader.read_keys, path, sorted(keys)), association=association)
        name = os.path.basename(path)
        try:
            for source, level in groups:
                taken = ruleset.route(source, level, facts)
                rows.append({"file": path, "source": source, "level": level,
                             "rules": [{"rule": r.name, "dest": list(r.dests)} for r in taken]})
                text = "; ".join(f"{r.name} -> {', '.join(r.dests) or '(nowhere)'}" for r in taken) or "unrouted"
                lines.append(f"{name}  {source}  {level}  {text}")
            seen_keys |= {k for k in keys if facts.values(k)}
        except DianaError as exc:
            unreadable += 1
            rows.append({"file": path, "error": str(exc)})
            lines.append(f"{name}  cannot be read: {exc}")
    for key in sorted(keys - seen_keys):
        lines.append(f"note: {key} is in no tested file's header (a typo, or a tag these files lack?)")
    state.emit(rows, "\n".join(lines))
    if unreadable:
        raise SystemExit(exit_codes.FAILED)
