"""The router in process, on real folders: each (rule, destination) delivers an item once (the ledger), the select
step takes only the rules whose conditions hold and counts the rest as unrouted; ``diana routes check`` names each
problem on its own line and ``diana routes test`` prints the rules a file takes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pydicom
from click.testing import CliRunner

from diana_core.cli import cli
from diana_core.ports import Event, EventType
from diana_core.services import Services
from diana_core.usecases.ledger import DeliveryLedger
from diana_core.usecases.routing import Router
from diana_core.usecases.rules import RuleSet

CORPUS = Path(pydicom.__file__).parent / "data" / "test_files"


RULES = [{"name": "ct", "source": "inbox", "when": {"Modality": "CT"}, "dest": ["a", "b"]},
         {"name": "all", "source": "inbox", "dest": "c"},
         {"name": "none", "source": "inbox", "when": {"Modality": "US"}}]


def setup(tmp_path: Path, rules: list[dict] = RULES) -> tuple[Router, Services, Path]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(CORPUS / name, inbox / name)
    services = Services({"inbox": {"ctype": "ObservableDcmDir", "path": str(inbox)},
                         **{n: {"ctype": "DcmDir", "path": str(tmp_path / n)} for n in ("a", "b", "c")}})
    return Router(RuleSet.compile(rules), ledger=DeliveryLedger(tmp_path / "ledger.sqlite")), services, inbox


def files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm")) if folder.exists() else []


def test_each_destination_delivers_an_item_once_and_select_takes_only_matching_rules(tmp_path):
    router, services, inbox = setup(tmp_path)
    triggers = router.build(services)
    assert [t.name for t in triggers] == ["ct->a", "ct->b", "all->c"]  # no trigger for a rule without dest
    ct = Event(event_type=EventType.FILE_ADDED, source_name="inbox", data=str(inbox / "CT_small.dcm"))
    mr = Event(event_type=EventType.FILE_ADDED, source_name="inbox", data=str(inbox / "MR_small.dcm"))
    assert [t.name for t in router.select(ct, triggers)] == ["ct->a", "ct->b", "all->c"]
    assert [t.name for t in router.select(mr, triggers)] == ["all->c"]

    for trigger in triggers:
        trigger.action(ct.data)
    assert [len(files(tmp_path / n)) for n in ("a", "b", "c")] == [1, 1, 1]
    os.unlink(files(tmp_path / "b")[0])  # gone from b: only the ledger can stop a second delivery now
    for trigger in triggers:
        trigger.action(ct.data)  # the event replayed (a restart after kill -9)
    assert [len(files(tmp_path / n)) for n in ("a", "b", "c")] == [1, 0, 1]
    assert router.counts["ct"].skipped == 2 and router.counts["all"].skipped == 1

    os.utime(inbox / "CT_small.dcm", ns=(1, 1))  # the file written again: a new item
    triggers[1].action(ct.data)
    assert len(files(tmp_path / "b")) == 1
    rows = router.ledger.rows()
    assert sorted((r[0], r[1]) for r in rows) == [("all", "c"), ("ct", "a"), ("ct", "b"), ("ct", "b")]


def test_an_event_no_rule_takes_is_counted_and_an_unreadable_one_too(tmp_path):
    router, services, inbox = setup(tmp_path, [{"name": "ct", "source": "inbox", "when": {"Modality": "CT"},
                                                "dest": "a"}])
    triggers = router.build(services)
    (inbox / "junk.dcm").write_text("not DICOM")
    for name in ("MR_small.dcm", "junk.dcm", "CT_small.dcm"):
        router.select(Event(event_type=EventType.FILE_ADDED, source_name="inbox", data=str(inbox / name)), triggers)
    assert (router.unrouted, router.unreadable, router.counts["ct"].matched) == (2, 1, 1)
    other = Event(event_type=EventType.FILE_ADDED, source_name="elsewhere", data="x.dcm")
    assert router.select(other, []) == [] and router.unrouted == 2  # no rule listens there: not "unrouted"


def write(tmp_path: Path, routes: list[dict]) -> tuple[str, str]:
    services = {"inbox": {"ctype": "ObservableDcmDir", "path": str(tmp_path)},
                "archive": {"ctype": "DcmDir", "path": str(tmp_path / "archive")}}
    (tmp_path / "services.yml").write_text(json.dumps(services))
    (tmp_path / "routes.yml").write_text(json.dumps({"routes": routes}))
    return str(tmp_path / "services.yml"), str(tmp_path / "routes.yml")


def test_routes_check_prints_one_line_per_problem(tmp_path):
    services, routes = write(tmp_path, [
        {"name": "ct", "source": "inbox", "when": {"Modality": "CT"}, "dest": "archive", "stop": True},
        {"name": "ct-chest", "source": "inbox", "when": {"Modality": "CT", "BodyPartExamined": "CHEST"},
         "dest": "archive"},
        {"name": "typo", "source": "inbox", "dest": ["archiv"], "handler": "upload"},
        {"name": "old", "source": "path:/incoming", "dest": "archive"},
    ])
    result = CliRunner().invoke(cli, ["-s", services, "routes", "check", routes])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("route 'typo': unknown handler 'upload' (known: ")
    assert lines[1:] == [
        "route 'typo': unknown dest service 'archiv' (known: archive, inbox)",
        "route 'old': 'path:/incoming' is the original DIANA's shortcut; write the folder itself: '/incoming'",
        "route 'ct-chest' is never reached: route 'ct' above takes every event it would and stops (stop: true)"]
    bad = write(tmp_path, [{"name": "x", "source": "inbox", "when": {"StudyDescription": "~(chest"}}])[1]
    result = CliRunner().invoke(cli, ["-s", services, "routes", "check", bad])
    assert result.exit_code == 1 and "route 'x' StudyDescription: bad regex '(chest'" in result.output


def test_routes_test_prints_each_files_rules_and_notes_a_key_no_file_has(tmp_path):
    services, routes = write(tmp_path, [
        {"name": "ct", "source": "inbox", "when": {"Modality": "CT", "CallingAET": "CT1"}, "dest": "archive"},
        {"name": "typo", "source": "inbox", "when": {"Modalty": "MR"}, "dest": "archive"},
        {"name": "rest", "source": "inbox", "otherwise": True}])
    args = ["-s", services, "routes", "test", routes, str(CORPUS / "CT_small.dcm"), str(CORPUS / "MR_small.dcm")]
    result = CliRunner().invoke(cli, [*args, "--calling-aet", "CT1"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "CT_small.dcm  inbox  instance  ct -> archive",
        "MR_small.dcm  inbox  instance  rest -> (nowhere)",
        "note: Modalty is in no tested file's header (a typo, or a tag these files lack?)"]
    assert "CT_small.dcm  inbox  instance  rest" in CliRunner().invoke(cli, args).output  # no association: not CT1


def test_conditions_read_a_header_only_as_far_as_their_keys():
    from diana_core.services import build_endpoint

    reader = build_endpoint("DcmDir", {"path": "."}, service_name="reader")
    path = str(CORPUS / "CT_small.dcm")
    quick = reader.read_keys(path, ["Modality", "StudyDescription"])
    assert quick.Modality == "CT" and "StudyDescription" in quick
    assert "PatientName" not in quick and "Rows" not in quick  # parsing stopped after (0008,1030)
    assert "Rows" in reader.read_keys(path, ["(0028,0010)"])
    assert "Rows" in reader.read_keys(path, ["Modalty"])  # a key pydicom does not know: the whole header
    assert "PixelData" not in reader.read_keys(path, ["Modalty"])


def test_the_ledger_is_owner_only_and_watch_keeps_it_per_routes_file_in_the_state_folder(tmp_path, monkeypatch):
    """The ledger names the studies and files it delivered: 0600, and by default one per routes file under
    $XDG_STATE_HOME/diana/ledgers (never the working directory, never shared by two routes files)."""
    import stat

    from diana_core.cli.watch import _default_ledger

    ledger = DeliveryLedger(tmp_path / "ledger.sqlite")
    ledger.record("ct", "research", "1.2.3.4")
    assert stat.S_IMODE(os.stat(tmp_path / "ledger.sqlite").st_mode) == 0o600
    ledger.close()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    first, second = _default_ledger(str(tmp_path / "a" / "routes.yml")), _default_ledger(str(tmp_path / "routes.yml"))
    assert first != second and all(p.startswith(str(tmp_path / "state" / "diana" / "ledgers")) for p in (first, second))
