"""``diana mock``: run a mock site (YAML/JSON description or a small default) into a service or a folder."""

from __future__ import annotations

import json
import math
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from diana_core.errors import ConfigError

DEFAULT_SITE = {
    "name": "Mock Facility",
    "services": [
        {"name": "CT", "modality": "CT", "devices": 1, "studies_per_hour": 6},
        {"name": "MR", "modality": "MR", "devices": 1, "studies_per_hour": 3},
        {"name": "CR", "modality": "CR", "devices": 1, "studies_per_hour": 12},
    ],
}


def read_site_desc(path: str | None) -> Any:
    """The site description from a YAML or JSON file (safe load), or the default site."""
    if path is None:
        return DEFAULT_SITE
    text = Path(path).read_text(encoding="utf-8")
    if path.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"site description {path!r} is not valid JSON (line {exc.lineno})") from exc
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"site description {path!r} is not valid YAML: {exc}") from exc


def resolve_dest(ctx: click.Context, spec: str) -> Any:
    """A service named in the service file (-s / $DIANA_SERVICES), else a folder path."""
    from diana_core.cli.plugin_api import CliState
    from diana_core.services import load_services

    state = ctx.find_object(CliState)
    services = state.services if state is not None else load_services(None)
    if spec in services.descriptions:
        return services[spec]
    return spec


def build_site(desc: Any, scale: float | None, max_instances: int | None) -> Any:
    """One MockSite from a site dict or a list of them (devices of several sites run on one timeline)."""
    from diana_mock.site import MockSite

    if isinstance(desc, dict):
        desc = [desc]
    if not isinstance(desc, list) or not desc:
        raise ConfigError("a mock site description must be a mapping (or a list of mappings) with 'services'")
    overrides = {k: v for k, v in (("scale", scale), ("max_instances_per_series", max_instances)) if v is not None}
    sites = MockSite.Factory.create_many([{**d, **overrides} if isinstance(d, dict) else d for d in desc])
    site = sites[0]
    for other in sites[1:]:
        site.services.extend(other.services)
    return site


@click.command("mock")
@click.argument("site_desc", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-d", "--dest", required=True, help="Service name (from -s FILE) or a folder path for the files.")
@click.option("-n", "--studies", type=click.IntRange(min=1), help="Stop after N studies.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after SECONDS of simulated time.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Time acceleration: 60 = one simulated hour per minute; 'inf' = no waiting.")
@click.option("--seed", help="PRNG seed: the same seed, --start and options give identical files (default: random).")
@click.option("--start", help="Simulated start time (ISO, e.g. 2024-01-02T08:00); default now.")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), help="Multiply instance counts per series.")
@click.option("--max-instances", type=click.IntRange(min=1), help="Cap the instances of any series.")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel uploads per study (endpoints that support it).")
@click.pass_context
def mock_cmd(ctx: click.Context, site_desc: str | None, dest: str, studies: int | None, duration: float | None,
             speed: float, seed: str | None, start: str | None, scale: float | None, max_instances: int | None,
             workers: int) -> None:
    """Generate mock studies (valid DICOM with small images) from a site description into DEST.

    \b
    SITE_DESC (YAML/JSON), e.g.:
      name: General Hospital
      services:
        - {name: Main CT, modality: CT, devices: 2, studies_per_hour: 6}
        - {name: Chest CR, modality: CR, devices: 1, studies_per_hour: 12}
    Without it, a small CT/MR/CR site is used. Example:
      diana mock --dest ./pacs --studies 5 --speed inf --seed demo --max-instances 20
    """
    from diana_mock.dixels import reset_mock_seed

    if seed is None:
        seed = secrets.token_hex(4)
        click.echo(f"mock: seed {seed} (give --seed {seed} to repeat this run)", err=True)
    reset_mock_seed(seed)
    try:
        start_dt = datetime.fromisoformat(start) if start else None
    except ValueError:
        raise click.BadParameter(f"{start!r} is not an ISO date/time", param_hint="--start") from None
    site = build_site(read_site_desc(site_desc), scale, max_instances)
    target = resolve_dest(ctx, dest)
    if studies is None and duration is None:
        click.echo("mock: no --studies or --duration given: running until interrupted (Ctrl-C)", err=True)

    from diana_core.cli.plugin_api import progress_bar, stderr_is_tty

    on_tty = stderr_is_tty()
    json_output = getattr(ctx.find_root().obj, "json_output", False)
    with progress_bar("mock", total=studies, enabled=on_tty and not json_output) as advance:
        def progress(study: Any, result: Any) -> None:
            if on_tty:  # a bar on a terminal; one line per study elsewhere (logs, CI)
                advance(instances=result.done, failed=len(result.failed))
                return
            failed = f", {len(result.failed)} failed" if result.failed else ""
            click.echo(f"mock: study {study.study_number} {study.modality} from {study.station_name}: "
                       f"{len(study.children)} series, {result.done} instances{failed}", err=True)

        counts = site.run(target, studies=studies, duration=duration,
                          speed=math.inf if math.isinf(speed) else speed, start=start_dt, workers=workers,
                          on_study=progress)
    summary = {k: counts[k] for k in ("studies", "series", "instances", "failed", "sim_seconds", "elapsed")}
    summary["seed"] = seed
    summary["dest"] = str(dest)
    if json_output:
        click.echo(json.dumps(summary | {"accessions": counts["accessions"]}))
    else:
        click.echo(f"{summary['studies']} studies, {summary['series']} series, {summary['instances']} instances "
                   f"-> {dest} ({summary['failed']} failed) in {summary['elapsed']:.1f} s "
                   f"({summary['sim_seconds']:.0f} s simulated)")
    for ident, reason in counts["failures"][:5]:
        click.echo(f"mock: failed {ident}: {reason}", err=True)
    if counts["failed"]:
        ctx.exit(1)
