"""Routing rules' grammar against real headers (pydicom's corpus read header-only): each condition form matches
what it should and nothing else, mistakes are one-line ConfigErrors naming the route, shadowed rules are found."""

from __future__ import annotations

import os

import pydicom
import pytest

from diana_core.errors import ConfigError
from diana_core.usecases.rules import Facts, RuleSet, compile_rule

CORPUS = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")


def facts(name: str, **association: str) -> Facts:
    path = os.path.join(CORPUS, name)
    return Facts(load=lambda: pydicom.dcmread(path, stop_before_pixels=True), association=association)


def takes(when: dict, name: str, **association: str) -> bool:
    return compile_rule({"source": "s", "when": when}, 0).matches(facts(name, **association))


@pytest.mark.parametrize(("when", "ct", "mr"), [
    ({"Modality": "CT"}, True, False),
    ({"Modality": ["MR", "US"]}, False, True),
    ({"Modality": "!CT"}, False, True),
    ({"Modality": "~^(C|X)T$"}, True, False),
    ({"Modality": "!~^M"}, True, False),
    ({"StudyDate": ">=20040501"}, False, True),  # CT 20040119, MR 20040826
    ({"StudyDate": {">=": "2004-01-01", "<": "2004-02-01"}}, True, False),
    ({"Rows": {">": 100}}, True, False),  # CT 128 rows, MR 64
    ({"Rows": 64}, False, True),
    ({"StudyDescription": {"exists": True}}, True, False),  # only the CT has one
    ({"StudyDescription": {"exists": False}}, False, True),
    ({"ImageType": "AXIAL"}, True, False),  # any value of a multi-valued element
    ({"(0008,0060)": "MR"}, False, True),  # a tag instead of a keyword
    ({"Modality": {"not": ["CT", "US"]}}, False, True),
    ({"Modality": "CT", "Rows": 64}, False, False),  # every condition must hold
])
def test_each_condition_form_matches_what_it_says(when, ct, mr):
    assert takes(when, "CT_small.dcm") is ct
    assert takes(when, "MR_small.dcm") is mr


def test_association_facts_come_from_the_association_not_the_header():
    when = {"CallingAET": ["CT1", "CT2"], "PeerAddress": "~^127\\."}
    assert takes(when, "CT_small.dcm", CallingAET="CT2", PeerAddress="127.0.0.1")
    assert not takes(when, "CT_small.dcm", CallingAET="MR1", PeerAddress="127.0.0.1")
    assert not takes(when, "CT_small.dcm")  # a folder source has no association


def test_the_header_is_read_once_and_only_when_a_condition_needs_it():
    f = facts("CT_small.dcm", CallingAET="CT1")
    rules = RuleSet.compile([{"name": "a", "source": "s", "when": {"CallingAET": "CT1"}},
                             {"name": "b", "source": "s", "when": {"Modality": "CT"}},
                             {"name": "c", "source": "s", "when": {"Rows": 128}}])
    assert rules.rules[0].matches(f) and f.header_reads == 0
    assert [r.name for r in rules.route("s", "instance", f)] == ["a", "b", "c"]
    assert f.header_reads == 1
    carried = Facts(tags={"Modality": "CT"}, load=lambda: pytest.fail("header read for a carried tag"))
    assert rules.rules[1].matches(carried)


def test_every_matching_rule_takes_the_event_stop_ends_the_search_otherwise_takes_the_rest():
    rules = RuleSet.compile([
        {"name": "ct", "source": "s", "when": {"Modality": "CT"}, "dest": ["a", "b"]},
        {"name": "small", "source": "s", "when": {"Rows": {"<=": 128}}, "dest": "c", "stop": True},
        {"name": "after", "source": "s", "when": {"Modality": "MR"}, "dest": "d"},
        {"name": "rest", "source": "s", "otherwise": True, "dest": []},
        {"name": "other", "source": "t", "dest": "e"},
    ])
    assert [r.name for r in rules.route("s", "instance", facts("CT_small.dcm"))] == ["ct", "small"]
    assert [r.name for r in rules.route("s", "instance", facts("MR_small.dcm"))] == ["small"]
    assert [r.name for r in rules.route("s", "instance", facts("test-SR.dcm"))] == ["rest"]
    assert rules.rules[0].dests == ("a", "b") and rules.rules[3].dests == ()
    assert rules.route("s", "stable-study", facts("CT_small.dcm")) == []


def test_todays_routes_form_stays_valid():
    rule = compile_rule({"handler": "upload_item", "source": "inbox", "dest": "pacs", "event": "file_added",
                         "options": {"anonymize": True}}, 0)
    assert (rule.name, rule.handler, rule.dests, rule.level, rule.conditions) == (
        "route1", "upload_item", ("pacs",), "instance", ())
    assert compile_rule({"handler": "say", "source": "inbox", "dest": "-"}, 1).dests == ()
    assert compile_rule({"source": "inbox", "event": "study_stable"}, 2).level == "stable-study"


@pytest.mark.parametrize(("entry", "message"), [
    ({"source": "s", "when": {"StudyDescription": "~(chest"}}, "route #1 StudyDescription: bad regex '(chest'"),
    ({"name": "x", "source": "s", "when": {"Rows": ">=big"}}, "route 'x' Rows: >= needs a number or a date"),
    ({"source": "s", "when": {"Modality": {"equals": "CT"}}}, "unknown operator 'equals'; known: exists, not"),
    ({"source": "s", "when": {"Modality": True}}, "True is not a value to compare with; for presence write"),
    ({"source": "s", "when": {"Modality": []}}, "an empty list matches nothing"),
    ({"source": "s", "when": {"Modality": {"exists": "yes"}}}, "exists takes true or false"),
    ({"source": "s", "when": {"Study Date": "x"}}, "'Study Date' is not a DICOM keyword, a tag"),
    ({"source": "s", "when": "Modality=CT"}, "when must be a mapping"),
    ({"source": "s", "otherwise": True, "when": {"Modality": "CT"}}, "cannot also have 'when'"),
    ({"source": "s", "on": "stable-patient"}, "on must be one of instance, stable-study, stable-series"),
    ({"source": "s", "on": "stable-study", "event": "study_stable"}, "give 'on' or 'event', not both"),
    ({"source": "s", "event": "study_done"}, "unknown event 'study_done'"),
    ({"source": "s", "dests": ["a"]}, "unknown key 'dests'; known: name, source, handler, dest"),
    ({"source": "s", "dest": ["a", "a"]}, "dest names a service twice"),
    ({"dest": "a"}, "needs 'source'"),
])
def test_mistakes_are_one_line_config_errors_naming_the_route(entry, message):
    with pytest.raises(ConfigError) as err:
        RuleSet.compile([entry])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_duplicate_names_are_refused():
    with pytest.raises(ConfigError, match="route 'a': the name is used twice"):
        RuleSet.compile([{"name": "a", "source": "s"}, {"name": "a", "source": "s"}])


def test_shadowed_rules_are_reported():
    rules = RuleSet.compile([
        {"name": "ct", "source": "s", "when": {"Modality": "CT"}, "dest": "a", "stop": True},
        {"name": "ct-chest", "source": "s", "when": {"Modality": "CT", "BodyPartExamined": "CHEST"}, "dest": "b"},
        {"name": "ct-other-source", "source": "t", "when": {"Modality": "CT"}, "dest": "b"},
        {"name": "mr", "source": "s", "when": {"Modality": "MR"}, "dest": "c"},
        {"name": "mr-again", "source": "s", "when": {"Modality": "MR"}, "dest": "c"},
        {"name": "all", "source": "t", "dest": "d"},
        {"name": "rest", "source": "t", "otherwise": True},
    ])
    assert rules.problems() == [
        "route 'ct-chest' is never reached: route 'ct' above takes every event it would and stops (stop: true)",
        "route 'mr-again' is never reached: it repeats route 'mr' (same conditions, handler and destinations)",
        "route 'rest' is never reached: route 'all' above has no conditions, so nothing is left for 'otherwise'",
    ]
