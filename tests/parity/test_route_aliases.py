"""The original DIANA's route handler names work as deprecated aliases in ``-r``/routes files (#15 item 4):
each becomes Diana's handler with the options and event the original implied, and says so once."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from attrs import define
from click.testing import CliRunner

from diana_core import Dixel
from diana_core.embedded import MemoryEndpoint
from diana_core.ports import EventType, Observable
from diana_core.usecases.route_aliases import ALIASES
from diana_core.usecases.routes import mk_route


@define(kw_only=True)
class WatchedStore(MemoryEndpoint, Observable):
    """An observable in-memory store that reports stable studies/series and new instances, like Orthanc."""

    event_types = (EventType.INSTANCE_ADDED, EventType.SERIES_STABLE, EventType.STUDY_STABLE)

    def changes(self, **kwargs: Any) -> list:
        return []


@define(kw_only=True)
class WatchedFolder(MemoryEndpoint, Observable):
    event_types = (EventType.FILE_ADDED,)

    def changes(self, **kwargs: Any) -> list:
        return []


@pytest.mark.parametrize(("old", "new", "options", "event"), [
    ("say_studies", "say", {}, EventType.STUDY_STABLE),
    ("say_hello_series", "say", {"suffix": "says hello"}, EventType.SERIES_STABLE),
    ("say_hello_instances", "say", {"suffix": "says hello"}, EventType.INSTANCE_ADDED),
    ("anon_and_send_studies", "send_item", {"level": "studies", "anonymize": True}, EventType.STUDY_STABLE),
    ("anon_and_send_instances", "send_item", {"level": "instances", "anonymize": True}, EventType.INSTANCE_ADDED),
    ("index_series", "index_item", {"level": "series"}, EventType.SERIES_STABLE),
    ("index_instances", "index_item", {"level": "instances"}, EventType.INSTANCE_ADDED),
])
def test_old_names_build_the_same_route_and_warn(old, new, options, event):
    with pytest.warns(DeprecationWarning, match=f"{old}.*use '{new}'"):
        trigger = mk_route(old, WatchedStore(name="orthanc"), MemoryEndpoint(name="dest"))
    assert trigger.handler == new and trigger.event_type == event
    assert {k: trigger.action.keywords[k] for k in options} == options


@pytest.mark.parametrize(("old", "new", "options"), [
    ("say_files", "say", {}),
    ("upload_files", "upload_item", {}),
    ("upload_and_anonymize_files", "upload_item", {"anonymize": True}),
])
def test_old_file_routes(old, new, options):
    with pytest.warns(DeprecationWarning):
        trigger = mk_route(old, WatchedFolder(name="incoming"), MemoryEndpoint(name="dest"))
    assert trigger.handler == new and trigger.event_type == EventType.FILE_ADDED
    assert {k: trigger.action.keywords[k] for k in options} == options


def test_alias_runs_the_new_handler(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        trigger = mk_route("say_hello_studies", WatchedStore(name="orthanc"))
    trigger.action(Dixel(meta={"ID": "abc"}, tags={"AccessionNumber": "A1"}))
    assert "says hello" in capsys.readouterr().out


def test_explicit_options_win_and_every_alias_names_an_installed_handler():
    with pytest.warns(DeprecationWarning):
        trigger = mk_route("anon_and_send_studies", WatchedStore(name="o"), MemoryEndpoint(name="d"),
                           anonymize=False)
    assert trigger.action.keywords["anonymize"] is False
    from diana_core.plugins import get_plugin_manager

    assert {a.handler for a in ALIASES.values()} <= set(get_plugin_manager().load_all().handlers)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_watch_accepts_old_names_with_anonymize(tmp_path):
    """``diana watch -r upload_and_anonymize_files ...`` parses (stops at the missing dest service, not the name)."""
    from diana_core.cli import cli

    out = CliRunner().invoke(cli, ["watch", "-r", "upload_files", str(tmp_path), "nosuchservice", "--anonymize"])
    assert "cannot anonymize" not in out.output
    assert "nosuchservice" in out.output
