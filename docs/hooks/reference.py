"""MkDocs hook: the reference pages are generated from the code at build time, never copied by hand.

- ``reference/ctypes.md``: every ctype every installed plugin registers, each attrs field with its type, default,
  whether it is a secret, and its description (``metadata["doc"]``, else the class docstring's line for the field).
- ``reference/profiles.md``: the de-identification profile options with their CID 7050 codes.
- ``reference/exit-codes.md``: the exit codes the CLI documents in ``diana_core.cli.exit_codes`` (or the defaults).
The CLI reference (``reference/cli.md``) is rendered by mkdocs-click from ``cli_tree`` below, a plain click group
holding every command the ``diana`` group offers (built-ins are lazy in the real group, plugin commands come from hooks).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import attrs
import click
from mkdocs.structure.files import File, Files


def _type_name(tp: Any) -> str:
    if tp is None:
        return ""
    if isinstance(tp, str):
        return tp
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _default(f: attrs.Attribute) -> str:
    if f.metadata.get("secret"):
        return "—"
    d = f.default
    if d is attrs.NOTHING:
        return "required"
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        try:
            d = d.factory()  # type: ignore[call-arg]
        except TypeError:
            return "computed"
    if d is None or d == "":
        return "—" if d is None else '""'
    return f"`{d!r}`"


_FIELD_LINE = re.compile(r"^\s{4}(\w+)\s*:[^#]*#\s*(.+)$")
_DOC_FIELD = re.compile(r"^\s*(\w+):\s+(.+)$")


def _own_docs(cls: type) -> dict[str, str]:
    """Descriptions a class gives its own fields: the comment on the field's line, else an entry of the docstring's
    ``Fields:`` section (``name: text``, continuation lines indented deeper)."""
    docs: dict[str, str] = {}
    doc = inspect.getdoc(cls) or ""
    if "\nFields:" in doc:
        current, indent = None, None
        for line in doc.split("\nFields:", 1)[1].splitlines():
            if not line.strip():
                continue
            depth = len(line) - len(line.lstrip())
            match = _DOC_FIELD.match(line)
            if match and (indent is None or depth == indent):
                indent, current = depth, match.group(1)
                docs[current] = match.group(2).strip()
            elif current and indent is not None and depth > indent:
                docs[current] += " " + line.strip()
            else:
                break  # the section ended
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return docs
    for line in source.splitlines():
        match = _FIELD_LINE.match(line)
        if match and match.group(1) not in docs:
            docs[match.group(1)] = match.group(2).strip()
    return docs


def field_docs(cls: type) -> dict[str, str]:
    """Every init field of an attrs ctype class -> its description (``metadata["doc"]``, else the nearest class in
    the MRO that describes it); fields nobody describes are missing from the result."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        found.update(_own_docs(klass))
    out = {}
    for f in attrs.fields(cls):
        if f.name.startswith("_") or not f.init:
            continue
        text = f.metadata.get("doc") or found.get(f.name)
        if text:
            out[f.name] = str(text)[0].upper() + str(text)[1:]
    return out


def _fields_table(cls: type) -> list[str]:
    rows = ["| field | type | default | secret | description |", "|---|---|---|---|---|"]
    docs = field_docs(cls)
    for f in attrs.fields(cls):
        if f.name.startswith("_") or not f.init:
            continue
        doc = docs.get(f.name, "").replace("|", "\\|").replace("\n", " ")
        secret = "yes" if f.metadata.get("secret") else ""
        rows.append(f"| `{f.name}` | `{_type_name(f.type)}` | {_default(f)} | {secret} | {doc} |")
    return rows


def ctypes_page() -> str:
    from diana_core.plugins import get_plugin_manager

    pm = get_plugin_manager().load_all()
    lines = ["# Service-file ctypes", "",
             "Generated from the attrs classes of every installed plugin at build time. A service-file entry names a "
             "`ctype` and sets these fields; unknown keys are refused. Secrets are never written back by `asdict()` "
             "and should come from `${ENV}` in the service file.", ""]
    for ctype in sorted(pm.endpoints):
        cls = pm.endpoints[ctype]
        owner = pm._owner.get(ctype, "")  # noqa: SLF001 - the build reads the registry it documents
        lines += [f"## {ctype}", "", f"Plugin: `{owner}` · class `{cls.__module__}.{cls.__qualname__}`", ""]
        doc = inspect.getdoc(cls) or ""
        if doc:
            lines += [doc.split("\n\n")[0].replace("\n", " "), ""]
        if attrs.has(cls):
            lines += _fields_table(cls)
        lines.append("")
    return "\n".join(lines)


def profiles_page() -> str:
    from diana_core import deid_profile as dp

    lines = ["# De-identification profile options", "",
             "Generated from `diana_core.deid_profile`. A profile is the PS3.15 Annex E Basic Application "
             "Confidentiality Profile plus options named after the columns of PS3.15 Table E.1-1, combined with commas "
             f"(default: `{dp.DEFAULT_PROFILE}`). Each applied option is recorded in the output's "
             "DeidentificationMethodCodeSequence with its CID 7050 code.", "",
             "| option | CID 7050 code | code meaning |", "|---|---|---|",
             f"| `basic` | {dp.BASIC[0]} | {dp.BASIC[1]} |"]
    for name, (code, meaning) in sorted(dp.OPTIONS.items()):
        lines.append(f"| `{name}` | {code} | {meaning} |")
    lines += ["", f"`{dp.ALLOW_BURNED_IN}` is not a PS3.15 option: it delivers instances that may show burned-in "
              "identifiers instead of quarantining them.", ""]
    return "\n".join(lines)


def build_cli_tree() -> click.Group:
    """Every command of ``diana`` in one plain group, for mkdocs-click."""
    from diana_core.cli import cli

    ctx = click.Context(cli, info_name="diana")
    group = click.Group("diana", params=cli.params, help=cli.help)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        if command is not None:
            group.add_command(command, name)
    return group


def __getattr__(name: str) -> Any:  # mkdocs-click reads ``cli_tree`` as an attribute: build it when asked
    if name == "cli_tree":
        return build_cli_tree()
    raise AttributeError(name)


class _NoRoutes:
    """A router with no rules, so the route families are listed too (their names and help do not depend on rules)."""

    unrouted = 0

    @staticmethod
    def table() -> list[dict[str, Any]]:
        return []


def metrics_page() -> str:
    """Every family ``/metrics`` serves, read from the exporters themselves (watch's status server and
    ``diana serve``): name, type, labels, help."""
    from diana_core.cli.serve import JobsView
    from diana_core.cli.status_server import WatchView
    from diana_core.metrics import Recorder
    from diana_core.usecases.watcher import Watcher

    lines = ["# Metrics", "",
             "Generated from the exporters at build time. `diana watch --status-port` serves the first table, "
             "`diana serve JOB...` the second, both at `/metrics` (Prometheus text format; OpenMetrics when the "
             "`Accept` header asks). Counters are exposed with the `_total` suffix. No label carries patient data.", ""]
    views = (("diana watch", WatchView(Watcher(), Recorder(), router=_NoRoutes())), ("diana serve", JobsView([])))
    for title, view in views:
        lines += [f"## {title}", "", "| metric | type | labels | help |", "|---|---|---|---|"]
        for family in view.metric_families():
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = ", ".join(f"`{label}`" for label in getattr(family, "_labelnames", ())) or "—"
            lines.append(f"| `{name}` | {family.type} | {labels} | {family.documentation} |")
        lines.append("")
    return "\n".join(lines)


SERVICE_MISTAKES = {
    "a ctype no installed plugin provides": {"pacs": {"ctype": "Orthanx"}},
    "a misspelt key": {"pacs": {"ctype": "Orthanc", "hots": "pacs.local"}},
    "an unset `${ENV}` variable": {"pacs": {"ctype": "Orthanc", "password": "${DIANA_DOCS_UNSET}"}},
    "a value of the wrong type": {"pacs": {"ctype": "Orthanc", "port": "eighty"}},
    "an entry without a ctype": {"pacs": {"host": "pacs.local"}},
    "credentials with `auth: none`": {"web": {"ctype": "DicomWeb", "url": "https://archive/dicom-web", "auth": "none",
                                              "user": "diana", "password": "secret"}},
}
ROUTE_MISTAKES = {
    "a misspelt key": [{"name": "ct", "sorce": "inbox", "dest": "research"}],
    "no source": [{"name": "ct", "dest": "research"}],
    "a bad regex": [{"name": "ct", "source": "inbox", "when": {"StudyDescription": "~(chest"}, "dest": "research"}],
    "an unknown comparison": [{"name": "ct", "source": "inbox", "when": {"SeriesNumber": {"=>": 2}},
                               "dest": "research"}],
    "an unknown level": [{"name": "ct", "source": "inbox", "on": "stable-patient", "dest": "research"}],
    "two rules with one name": [{"name": "ct", "source": "inbox", "dest": "a"},
                                {"name": "ct", "source": "inbox", "dest": "b"}],
    "`otherwise` with conditions": [{"name": "rest", "source": "inbox", "otherwise": True,
                                     "when": {"Modality": "CT"}, "dest": "archive"}],
}


def _said(run: Any) -> str:
    from diana_core.errors import DianaError

    try:
        run()
    except DianaError as exc:
        return f"`{type(exc).__name__}`: {str(exc).replace('|', '/')}"
    raise AssertionError("a documented mistake was accepted: the reference would lie")


def files_page() -> str:
    """The service-file and routes-file grammars, with the message each mistake really gives (the loaders are run
    on every example at build time; an example that stops failing fails the build)."""
    import json
    import os
    import tempfile

    import yaml

    from diana_core.services import load_services
    from diana_core.usecases.rules import load_routes_file

    lines = ["# Service and routes files", "",
             "A **service file** (YAML or JSON; `-s FILE`, `$DIANA_SERVICES` or `~/.config/diana/services.yml`) maps a "
             "service name to `{ctype: ..., field: value, ...}`; the fields of each ctype are in "
             "[Service-file ctypes](ctypes.md). `${NAME}` is replaced by the environment variable (secrets never go "
             "in the file). A **routes file** (`watch -R`) is `routes:` followed by rules; its grammar is in "
             "[Routes files](../routes.md).", "",
             "Generated at build time by running the loaders on each mistake below: the messages are the ones you "
             "get.", "", "## Service-file mistakes", "", "| mistake | entry | what Diana says |", "|---|---|---|"]
    os.environ.pop("DIANA_DOCS_UNSET", None)
    for what, desc in SERVICE_MISTAKES.items():
        name = next(iter(desc))
        said = _said(lambda desc=desc, name=name: load_services(desc)[name])
        lines.append(f"| {what} | `{json.dumps(desc)}` | {said} |")
    lines += ["", "## Routes-file mistakes", "", "| mistake | rules | what Diana says |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "routes.yml")
        for what, rules in ROUTE_MISTAKES.items():
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump({"routes": rules}, f)
            said = _said(lambda: load_routes_file(path)).replace(path, "routes.yml")
            lines.append(f"| {what} | `{json.dumps(rules)}` | {said} |")
    return "\n".join(lines) + "\n"


def status_page() -> str:
    """The keys of ``/status.json``: the watcher's, read from a live ``WatchView`` and described in
    ``STATUS_FIELDS``; a job's (``diana serve``), the fields of ``JobReport``."""
    from diana_core.cli.status_server import STATUS_FIELDS, WatchView
    from diana_core.metrics import Recorder
    from diana_core.usecases.jobreport import JobReport
    from diana_core.usecases.watcher import Watcher

    lines = ["# Status fields", "", "Generated from the code at build time. `/status.json` never carries patient data.",
             "", "## diana watch --status-port", "", "| key | meaning |", "|---|---|"]
    for key in WatchView(Watcher(), Recorder()).status():
        lines.append(f"| `{key}` | {STATUS_FIELDS.get(key, '')} |")
    lines += ["", "## diana serve JOB... (one entry of `jobs` per job folder)", "", "| key | meaning |", "|---|---|"]
    docs = field_docs(JobReport)
    for f in attrs.fields(JobReport):
        if f.name != "rows":
            lines.append(f"| `{f.name}` | {docs.get(f.name, '')} |")
    lines.append("| `chart_svg` | The throughput chart as SVG. |")
    return "\n".join(lines) + "\n"


def exit_codes_page() -> str:
    from diana_core.cli import exit_codes

    lines = ["# Exit codes", "", "Generated from `diana_core.cli.exit_codes`, the table the commands exit with.", "",
             "| status | meaning |", "|---|---|"]
    lines += [f"| {code} | {text} |" for code, text in sorted(exit_codes.MEANINGS.items())]
    return "\n".join(lines) + "\n"


GENERATED = {"reference/ctypes.md": ctypes_page, "reference/profiles.md": profiles_page,
             "reference/metrics.md": metrics_page, "reference/exit-codes.md": exit_codes_page,
             "reference/files.md": files_page, "reference/status.md": status_page}


def on_config(config: Any) -> Any:
    # mkdocs-click imports ``docs.hooks.reference`` by name: the repository root must be importable
    import sys

    root = str(Path(config["config_file_path"]).parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Links from a page to the repository's own files (``../diana_core/ports.py``) point at the source browser:
    the site holds the docs only, and a link that resolves to nothing in the repository stays broken (strict fails)."""
    docs = Path(config["docs_dir"]).resolve()
    root = docs.parent
    here = (docs / page.file.src_uri).parent
    repo = str(config.get("repo_url") or "").rstrip("/")

    def fix(match: re.Match[str]) -> str:
        target, _, anchor = match.group(1).partition("#")
        path = (here / target).resolve()
        if path.is_relative_to(docs) or not path.is_relative_to(root) or not path.exists() or not repo:
            return match.group(0)
        kind = "tree" if path.is_dir() else "blob"
        return f"]({repo}/{kind}/main/{path.relative_to(root).as_posix()}{'#' + anchor if anchor else ''})"

    return _LINK.sub(fix, markdown)


def on_files(files: Files, config: Any) -> Files:
    for uri, render in GENERATED.items():
        files.append(File.generated(config, uri, content=render()))
    return files
