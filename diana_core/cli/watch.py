"""``diana watch``: route events from observable services to handlers until interrupted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from diana_core.cli import exit_codes
from diana_core.cli.context import CliState, pass_state, stderr_console
from diana_core.cli.jobs_audit import audit_option, open_trail

NO_DEST = {"-", "none", "null", ""}
ANONYMIZING = {"upload_item", "send_item", "pull_and_save_item"}


def _current_name(handler: str) -> str:
    """The handler an original DIANA route name stands for (``upload_files`` -> ``upload_item``)."""
    from diana_core.usecases.route_aliases import ALIASES

    return ALIASES[handler].handler if handler in ALIASES else handler


def _build(state: CliState, route: dict[str, Any]) -> Any:
    from diana_core.usecases.routes import mk_route

    dest = route.get("dest")
    if isinstance(dest, str) and dest.lower() in NO_DEST:
        dest = None
    options = dict(route.get("options") or {})
    return mk_route(route["handler"], route["source"], dest, services=state.services,
                    event_type=route.get("event"), **options)


def _status(stats: Any) -> str:
    return (f"[bold]watching[/bold]  seen {stats.seen}  handled [green]{stats.handled}[/green]  "
            f"failed [red]{stats.failed}[/red]  retrying {stats.pending_retries}  dead {stats.dead}")


@contextmanager
def _status_line(watcher: Any, enabled: bool) -> Iterator[None]:
    """A live status line on a terminal; off it, one plain line every PLAIN_EVERY seconds (daemons, journald)."""
    import time

    from diana_core.cli.logs import stderr_is_tty
    from diana_core.cli.render import PLAIN_EVERY

    if not enabled:
        yield
        return
    if not stderr_is_tty():
        last = [time.monotonic()]

        def tick(stats: Any) -> None:
            if time.monotonic() - last[0] >= PLAIN_EVERY:
                last[0] = time.monotonic()
                click.echo(f"watching: seen {stats.seen} handled {stats.handled} failed {stats.failed} "
                           f"retrying {stats.pending_retries} dead {stats.dead}", err=True)

        watcher.on_tick = tick
        yield
        return
    from rich.live import Live

    live = Live(_status(watcher.stats), console=stderr_console(), refresh_per_second=4, transient=False)
    watcher.on_tick = lambda stats: live.update(_status(stats))
    with live:
        yield


@contextmanager
def _status_server(watcher: Any, port: int | None, host: str, token: str | None, deadletter: str,
                   router: Any = None) -> Iterator[None]:
    """The status page / metrics server around the watch loop (nothing without --status-port)."""
    if port is None:
        yield
        return
    from diana_core.cli.status_server import StatusServer, WatchView
    from diana_core.metrics import Recorder

    watcher.metrics = Recorder()
    if router is not None:
        router.metrics = watcher.metrics
    view = WatchView(watcher, watcher.metrics, deadletter, router=router)
    server = StatusServer(view, host=host, port=port, token=token).start()
    click.echo(f"status page: http://{host}:{server.port}/  (metrics: /metrics, health: /healthz)", err=True)
    try:
        yield
    finally:
        server.stop()


def _notify_dead_letters(watcher: Any, notifier: Any) -> None:
    """Chain onto the tick callback: post (throttled) when the dead-letter count grew since the last post."""
    previous = watcher.on_tick
    posted = [watcher.stats.dead]

    def tick(stats: Any) -> None:
        if previous is not None:
            previous(stats)
        if stats.dead > posted[0] and notifier.send("dead_letters", "watch", {
                "dead": stats.dead, "new_dead": stats.dead - posted[0], "seen": stats.seen, "handled": stats.handled,
                "failed": stats.failed, "pending_retries": stats.pending_retries}, throttle=True):
            posted[0] = stats.dead

    watcher.on_tick = tick


def _catch_up_line(watcher: Any, from_now: bool) -> None:
    """Start the sources and say in one line what each catches up with (what arrived while no daemon ran)."""
    from diana_core.ports import FromNow, Resuming

    parts = []
    for source in watcher.sources():
        if from_now and isinstance(source, FromNow):
            source.start_from_now()
        if isinstance(source, Resuming):
            parts.append(f"{getattr(source, 'name', '?')}: {source.resume_summary()}")
    if parts:
        click.echo("catching up: " + "; ".join(parts), err=True)


@click.command("watch")
@click.option("-r", "--route", "routes", multiple=True, type=(str, str, str), metavar="HANDLER SOURCE DEST",
              help="A route: handler name, source service, dest service ('-' for none). Repeatable.")
@click.option("-R", "--routes", "routes_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML list of rules {name, source, when, dest, handler, options, on, otherwise, stop}; "
                   "today's {handler, source, dest[, event, options]} too (docs/routes.md).")
@click.option("--replay", "replay_file", type=click.Path(dir_okay=False),
              help="Run the events of this dead-letter file once more, then exit (failures stay in the file).")
@click.option("--deadletter", default="diana-deadletter.jsonl", show_default=True, type=click.Path(dir_okay=False),
              help="Where events are written after the last retry.")
@click.option("--ledger", default=None, type=click.Path(dir_okay=False),
              help="With -R: which rule delivered what where (each destination's exactly-once bookkeeping) "
                   "[default: $XDG_STATE_HOME/diana/ledgers/<hash of the routes file's path>.sqlite].")
@click.option("--ledger-keep", default="7d", show_default=True, metavar="DURATION",
              help="With -R: how long the ledger keeps a delivery (90s, 15m, 12h, 7d); older rows are pruned, so "
                   "the file stays bounded. At least the retry schedule: a retried event must still find its row.")
@click.option("--retry-delays", default="1,2,5,10,20,30,60,60,120,300", show_default=True,
              help="Seconds before each retry, comma-separated ('' for no retries); about 10 minutes by default, "
                   "so a destination restart is outlasted. While a destination is down one event probes it.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls of sources without their own.")
@click.option("--max-seconds", type=float, help="Stop after this many seconds (for scripts and tests).")
@click.option("--from-now", is_flag=True,
              help="Folder sources: skip files that arrived while no daemon ran (no mark kept; by default a mark in "
                   "$XDG_STATE_HOME/diana/folders catches them up).")
@click.option("--anonymize", is_flag=True,
              help="Pseudonymize on the way (the -r routes of upload_item, send_item, pull_and_save_item).")
@click.option("--unkeyed", is_flag=True, help="With --anonymize: pseudonymize without a key (reproducible by anyone).")
@click.option("--profile", default=None, metavar="OPTIONS|FILE.yml",
              help="With --anonymize: the de-identification profile (see 'diana collect --help').")
@click.option("--status-port", type=click.IntRange(0, 65535), default=None,
              help="Serve a read-only status page, /metrics (Prometheus) and /healthz on this port (0: any free).")
@click.option("--status-host", default="127.0.0.1", show_default=True,
              help="Address for --status-port; anything but loopback needs --status-token.")
@click.option("--status-token", envvar="DIANA_STATUS_TOKEN", default=None,
              help="Token for the status server (Bearer, basic-auth password or ?token=). Env: DIANA_STATUS_TOKEN.")
@audit_option
@pass_state
def watch_cmd(state: CliState, routes: tuple[tuple[str, str, str], ...], routes_file: str | None,
              replay_file: str | None, deadletter: str, ledger: str | None, ledger_keep: str, retry_delays: str,
              interval: float,
              max_seconds: float | None, from_now: bool, anonymize: bool, unkeyed: bool, profile: str | None,
              status_port: int | None, status_host: str, status_token: str | None, audit_path: str | None) -> None:
    """Route events: run HANDLER on every new item of SOURCE, with DEST, until Ctrl-C / SIGTERM.

    \b
    Examples:
      diana -s services.yml watch -r upload_item incoming pacs
      diana -s services.yml watch -r upload_item ./incoming research --anonymize
      diana -s services.yml watch -r put_item pacs_inbox ./archive -r say pacs_inbox -
      diana -s services.yml watch -R routes.yml    # rules with conditions: docs/routes.md
      diana -s services.yml routes test routes.yml scan.dcm   # which rules a file takes, nothing sent
      diana -s services.yml watch --replay diana-deadletter.jsonl -R routes.yml
    Handlers: put_item, send_item, upload_item, pull_and_save_item, index_item, query_and_index, say (+ plugins').

    \b
    What is guaranteed (see the README, "What Diana guarantees"):
      - every event is handled at least once: an Orthanc source's cursor (persist_file) and a folder's mark
        (state_file) move only past events handled or dead-lettered, so a restart, even after kill -9,
        catches up with what arrived or was in flight while diana was down; handlers are idempotent, so an
        event repeated after a crash does not duplicate data
      - a transient failure (server unreachable) is retried (--retry-delays), a permanent one (bad file,
        programming error) is not; both end in the dead-letter file, to --replay later
      - each route runs once per event, however many routes share a source
      - a folder source keeps its mark in $XDG_STATE_HOME/diana/folders unless state_file names one
        (--from-now: no mark); a DicomReceiver answers success only once a file is fsynced, and a restart
        routes every received instance not yet routed (docs/guarantees.md)
    Not guaranteed: an Orthanc source without persist_file starts at "now".
    Exit status: 0 all events handled; 3 some events are in the dead-letter file (or failed again on
    --replay); 1 an error stopped diana; 2 bad usage.
    """
    from diana_core.usecases.watcher import Watcher, install_signal_handlers

    specs: list[dict[str, Any]] = [{"handler": h, "source": s, "dest": d} for h, s, d in routes]
    if anonymize:
        for spec in specs:
            if _current_name(spec["handler"]) not in ANONYMIZING:
                raise click.BadParameter(f"handler {spec['handler']} cannot anonymize", param_hint="--anonymize")
            spec["options"] = {"anonymize": True, "unkeyed": unkeyed, "profile": profile}
        from diana_core.plugins import check_profile
        from diana_core.pseudonym import Pseudonymizer

        checked = Pseudonymizer(unkeyed=unkeyed, profile=profile)
        checked.require_key()  # refuse before watching, not per event
        check_profile(checked.profile)
    try:
        delays = tuple(float(x) for x in retry_delays.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of seconds: {retry_delays!r}", param_hint="--retry-delays") from None
    router = None
    if routes_file:
        from diana_core.usecases.ledger import DeliveryLedger
        from diana_core.usecases.routing import Router
        from diana_core.usecases.rules import load_routes_file

        keep = _keep_seconds(ledger_keep, delays)
        router = Router(load_routes_file(routes_file),
                        ledger=DeliveryLedger(ledger or _default_ledger(routes_file), keep_seconds=keep))
    watcher = Watcher(action_interval=interval, retry_delays=delays, deadletter_path=deadletter)
    for spec in specs:
        watcher.add_trigger(_build(state, spec))
    if router is not None:
        for trigger in router.build(state.services):
            watcher.add_trigger(trigger)
        watcher.select, watcher.on_outcome = router.select, router.outcome

    if replay_file:
        result = watcher.replay(replay_file, routes=lambda rec: _build(state, rec["route"]) if rec.get("route")
                                else None)
        state.emit({"handled": result.handled, "failed": result.failed, "unroutable": result.unroutable},
                   f"replayed {result.handled}, failed again {result.failed}, no route {result.unroutable}")
        if result.failed or result.unroutable:
            raise SystemExit(exit_codes.DEAD_LETTERS)
        return

    if not specs and router is None:
        raise click.UsageError("give at least one route: -r HANDLER SOURCE DEST or -R routes.yml")
    from diana_core.usecases.routes import purge_route_leftovers, require_observable

    purge_route_leftovers()  # study archives a killed daemon was streaming: identified data, removed on start

    for trigger in watcher.triggers:
        require_observable(trigger)
    _catch_up_line(watcher, from_now)
    ends = [(getattr(t.source, "name", t.source), getattr(t.dest, "name", t.dest)) for t in watcher.triggers]
    watcher.audit = open_trail(audit_path, "watch", ", ".join(sorted({str(s) for s, _ in ends})),
                               ", ".join(sorted({str(d) for _, d in ends})), anonymize, profile, unkeyed)
    restore = install_signal_handlers(watcher)
    try:
        with _status_line(watcher, enabled=not state.json_output), \
                _status_server(watcher, status_port, status_host, status_token, deadletter, router):
            _notify_dead_letters(watcher, state.notifier)
            stats = watcher.run(max_seconds=max_seconds)
    finally:
        restore()
    summary: dict[str, Any] = {"seen": stats.seen, "handled": stats.handled, "failed": stats.failed, "dead": stats.dead,
                               "pending_retries": stats.pending_retries, "source_errors": stats.source_errors}
    if router is not None:
        summary["unrouted"], summary["routes"] = router.unrouted, router.table()
    state.notifier.send("watch_stopped", "watch", summary)
    watcher.audit.finish(**summary)
    state.emit(summary, f"stopped: seen {stats.seen}, handled {stats.handled}, failed {stats.failed}, "
                        f"dead {stats.dead}" + (f" (written to {deadletter})" if stats.dead else "")
                        + (f", unrouted {router.unrouted}" if router is not None else ""))
    if stats.dead:
        raise SystemExit(exit_codes.DEAD_LETTERS)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _keep_seconds(text: str, delays: tuple[float, ...]) -> float:
    """--ledger-keep in seconds: a number with s/m/h/d (seconds without); never shorter than the retry schedule."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], None)
    try:
        seconds = float(value[:-1] if unit else value) * (unit or 1.0)
    except ValueError:
        raise click.BadParameter(f"not a duration: {text!r} (e.g. 90s, 15m, 12h, 7d)", param_hint="--ledger-keep") \
            from None
    if seconds < sum(delays) + 60:
        raise click.BadParameter(f"{text} is shorter than the retry schedule ({sum(delays):g} s) plus a minute: a "
                                 "retried event could no longer find its delivery and be sent twice",
                                 param_hint="--ledger-keep")
    return seconds


def _default_ledger(routes_file: str) -> str:
    """One ledger per routes file, in the user's state folder: never shared by unrelated routes files (a shared one
    would skip deliveries it remembers from another setup) and never in the working directory."""
    from diana_core.delivery import default_state_file

    return default_state_file("ledgers", os.path.abspath(routes_file), ".sqlite")
