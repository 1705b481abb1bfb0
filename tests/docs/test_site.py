"""The documentation site: ``mkdocs build --strict`` (a broken link or a missing page fails), the reference pages
generated from the code, every CLI option described, and the built site rendered by a real headless Chromium."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _commands(group: click.Group, prefix: str = "diana") -> list[tuple[str, click.Command]]:
    ctx = click.Context(group, info_name=prefix)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} is listed but cannot be loaded"
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
    return found


def test_every_ctype_and_profile_option_is_in_the_generated_reference(site: Path) -> None:
    from diana_core.deid_profile import OPTIONS
    from diana_core.plugins import get_plugin_manager

    ctypes = (site / "reference" / "ctypes" / "index.html").read_text()
    for ctype, cls in get_plugin_manager().load_all().endpoints.items():
        assert f'id="{ctype.lower()}"' in ctypes, f"ctype {ctype} missing from the reference"
    assert "password" in ctypes and "secret" in ctypes
    profiles = (site / "reference" / "profiles" / "index.html").read_text()
    for option, (code, _meaning) in OPTIONS.items():
        assert option in profiles and code in profiles, option


def test_metrics_and_exit_codes_are_generated_from_the_code(site: Path) -> None:
    from diana_core.cli import exit_codes
    from diana_core.cli.status_server import COUNTERS

    metrics = (site / "reference" / "metrics" / "index.html").read_text()
    for name in COUNTERS:
        assert f"diana_{name}_total" in metrics, name
    assert "diana_job_studies" in metrics and "diana_route_delivered_total" in metrics
    files = (site / "reference" / "files" / "index.html").read_text()
    assert "unknown key 'hots'" in files and "bad regex" in files  # the loaders' own messages
    codes = (site / "reference" / "exit-codes" / "index.html").read_text()
    for code in exit_codes.MEANINGS:
        assert f"<td>{code}</td>" in codes, code


def test_every_status_field_is_described() -> None:
    """A key added to /status.json (or a JobReport field) without a description fails here."""
    import attrs

    sys.path.insert(0, str(ROOT))
    from diana_core.cli.status_server import STATUS_FIELDS, WatchView
    from diana_core.metrics import Recorder
    from diana_core.usecases.jobreport import JobReport
    from diana_core.usecases.watcher import Watcher
    from docs.hooks.reference import field_docs

    assert set(WatchView(Watcher(), Recorder()).status()) <= set(STATUS_FIELDS)
    assert {f.name for f in attrs.fields(JobReport)} <= set(field_docs(JobReport))


def test_every_ctype_field_has_a_description() -> None:
    """A new field without a description (metadata "doc", a comment on its line, or the class docstring's Fields:
    section) fails here, so the generated reference cannot fall behind the code."""
    import attrs

    sys.path.insert(0, str(ROOT))
    from diana_core.plugins import get_plugin_manager
    from docs.hooks.reference import field_docs

    missing = []
    for ctype, cls in sorted(get_plugin_manager().load_all().endpoints.items()):
        described = field_docs(cls)
        missing += [f"{ctype}.{f.name}" for f in attrs.fields(cls)
                    if f.init and not f.name.startswith("_") and f.name not in described]
    assert not missing, "ctype fields without a description: " + ", ".join(missing)


def test_every_command_is_in_the_cli_reference_and_every_option_has_help(site: Path) -> None:
    from diana_core.cli import cli

    page = (site / "reference" / "cli" / "index.html").read_text()
    undocumented = []
    for path, command in _commands(cli):
        assert path in page, f"{path} missing from the CLI reference"
        if not (command.help or command.short_help):
            undocumented.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                undocumented.append(f"{path} {param.opts[0]}")
    assert not undocumented, "CLI commands/options without a description: " + ", ".join(undocumented)


def test_the_site_renders_in_chromium(site: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                for path, heading, shot in (("reference/ctypes/", "Service-file ctypes", "reference.png"),
                                            ("guides/deidentify-a-folder/", "De-identify a folder", "guide.png")):
                    page.goto(f"{base}/{path}")
                    assert page.text_content("article h1").strip().startswith(heading)
                    page.screenshot(path=str(tmp_path / shot), full_page=False)
                    assert (tmp_path / shot).stat().st_size > 20_000, f"{shot}: the page drew almost nothing"
                page.goto(f"{base}/reference/ctypes/")
                assert page.locator("table").count() >= 5, "the ctype field tables did not render"
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
