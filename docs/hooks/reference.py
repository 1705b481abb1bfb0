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


def _fields_table(cls: type) -> list[str]:
    rows = ["| field | type | default | secret | description |", "|---|---|---|---|---|"]
    for f in attrs.fields(cls):
        if f.name.startswith("_") or not f.init:
            continue
        doc = str(f.metadata.get("doc", "")).replace("|", "\\|").replace("\n", " ")
        secret = "yes" if f.metadata.get("secret") else ""
        rows.append(f"| `{f.name}` | `{_type_name(f.type)}` | {_default(f)} | {secret} | {doc} |")
    return rows


def ctypes_page() -> str:
    from diana_core.plugins import get_plugin_manager

    pm = get_plugin_manager()
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


GENERATED = {"reference/ctypes.md": ctypes_page, "reference/profiles.md": profiles_page}


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
