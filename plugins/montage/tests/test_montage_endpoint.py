"""Montage endpoint and gateway against a LOCAL FAKE Montage server (diana_montage.testing.FakeMontage).

Montage is a commercial product and cannot run here: the fake is a stdlib http.server in a thread implementing the
routes and JSON shapes the gateway uses (search with offset/limit paging, cptcode, anatomy, basic auth -> 401).
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from diana_core import DicomLevel, load_services
from diana_core.errors import AuthenticationError, ConfigError, EndpointUnavailable, NotFound
from diana_montage import Montage, MontageGateway, date_windows, window_query
from diana_montage.testing import FakeMontage


@pytest.fixture()
def montage_fake() -> Iterator[FakeMontage]:
    """A fresh fake Montage with 25 synthetic reports; request counters start at zero."""
    fake = FakeMontage().start()
    yield fake
    fake.stop()


def endpoint(fake: FakeMontage, **changes: object) -> Montage:
    return load_services({"montage": {**fake.service_desc(), **changes}})["montage"]


def test_find_streams_every_page_as_dixels(montage_fake: FakeMontage) -> None:
    ep = endpoint(montage_fake)  # page_size 10, 25 reports -> 3 pages
    results = ep.find({"q": ""})
    assert isinstance(results, types.GeneratorType)
    first = next(results)
    assert montage_fake.requests["index/rad/search"] == 1  # only the first page so far
    dixels = [first, *results]
    assert montage_fake.requests["index/rad/search"] == 3
    assert [d.sid() for d in dixels] == [f"ACC{i:05d}" for i in range(25)]
    d = dixels[0]
    assert d.level == DicomLevel.STUDIES
    assert d.tags["PatientID"] == "MRN0000" and d.tags["Modality"] == "CT"
    assert d.tags["StudyDescription"] == "CT ABDOMEN PELVIS W CONTRAST" and d.tags["Organization"] == "Mock Hospital"
    assert d.tags["ReferringPhysicianName"] == "Referrer^Dr" and d.meta["OrderCode"] == "CTABDPEL"
    assert d.meta["ExamCompleted"] == "2020-01-01T09:30:00"
    assert d.meta["CPTCodes"] is None  # not resolved unless asked
    assert str(d.report) == "EXAM: CT ABDOMEN PELVIS W CONTRAST\n\nFINDINGS: normal study 0.\nImpression: none"


def test_query_terms_are_sent_and_max_results_caps_paging(montage_fake: FakeMontage) -> None:
    ep = endpoint(montage_fake)
    assert {d.tags["Modality"] for d in ep.find({"modality": "MR"})} == {"MR"}
    assert len(list(ep.find({"exam_type": "XRCHEST"}))) == 6
    assert len(list(ep.find({"q": "normal"}, max_results=12))) == 12
    assert len(list(ep.find({"modality": "US"}))) == 0


def test_get_meta_resolves_cpts_and_body_parts_with_caching(montage_fake: FakeMontage) -> None:
    ep = endpoint(montage_fake)
    dixels = list(ep.find({}, get_meta=True))
    assert dixels[0].meta["CPTCodes"] == ["74177"] and dixels[0].meta["BodyParts"] == ["Abdomen"]
    assert dixels[1].meta["BodyParts"] == ["Head"]
    assert dixels[3].meta["CPTCodes"] == ["74176", "71046"] and dixels[3].meta["BodyParts"] == ["Abdomen", "Chest"]
    # 4 distinct CPT ids and 6 anatomy nodes, each fetched once for 25 results
    assert montage_fake.requests["cptcode/501"] == 1 and sum(
        v for k, v in montage_fake.requests.items() if k.startswith("cptcode/")) == 4
    assert sum(v for k, v in montage_fake.requests.items() if k.startswith("anatomy/")) == 6
    ep.get_meta(dixels[0])
    assert montage_fake.requests["cptcode/501"] == 1


def test_result_errors_skipped_or_raised(montage_fake: FakeMontage) -> None:
    montage_fake.broken.add("cptcode/503")  # chest x-rays cannot be resolved
    ep = endpoint(montage_fake)
    kept = list(ep.find({}, get_meta=True))
    assert len(kept) == 25 - 6 - 6  # XR chest and CT abdomen+chest results refer to cpt 503
    with pytest.raises(NotFound, match="cptcode/503"):
        list(ep.find({}, get_meta=True, ignore_errs=False))


def test_wrong_password_is_authentication_error(montage_fake: FakeMontage) -> None:
    ep = endpoint(montage_fake, password="wrong", name="reports")
    with pytest.raises(AuthenticationError, match="reports") as info:
        list(ep.find({"q": "x"}))
    assert "wrong" not in str(info.value)
    with pytest.raises(AuthenticationError):
        ep.check()
    assert endpoint(montage_fake).check() is True


def test_missing_credentials_are_a_config_error_not_a_default(montage_fake: FakeMontage) -> None:
    desc = montage_fake.service_desc()
    del desc["password"]
    ep = load_services({"m": desc})["m"]
    assert ep.password is None
    with pytest.raises(ConfigError, match="password"):
        list(ep.find({}))
    assert MontageGateway().user is None and MontageGateway().verify is True and Montage().protocol == "https"


def test_stopped_server_is_unavailable() -> None:
    fake = FakeMontage().start()
    ep = endpoint(fake, timeout=2, retries=0)
    assert ep.check() is True
    fake.stop()
    assert ep.check() is False
    with pytest.raises(EndpointUnavailable, match="montage"):
        list(ep.find({}))


def test_date_windows_and_window_queries(montage_fake: FakeMontage) -> None:
    windows = list(date_windows("2020-01-01", date(2020, 1, 10), timedelta(days=4)))
    assert windows == [(date(2020, 1, 1), date(2020, 1, 4)), (date(2020, 1, 5), date(2020, 1, 8)),
                       (date(2020, 1, 9), date(2020, 1, 10))]
    assert window_query("2020-01-01", "2020-01-02", modality="CT") == {
        "modality": "CT", "start_date": "2020-01-01", "end_date": "2020-01-02"}
    ep = endpoint(montage_fake)
    found = list(ep.find_windows("2020-01-01", "2020-01-07", timedelta(days=3)))
    assert sorted(d.sid() for d in found) == [f"ACC{i:05d}" for i in range(7)]
    assert montage_fake.requests["index/rad/search"] == 3


def test_get_by_accession(montage_fake: FakeMontage) -> None:
    ep = endpoint(montage_fake)
    assert ep.get("ACC00007").tags["Modality"] == "CT"
    with pytest.raises(NotFound):
        ep.get("ACC99999")


def test_clean_text() -> None:
    assert MontageGateway.clean_text("<b>FINDINGS:</b> liver ok.\rNext") == "FINDINGS: liver ok.\nNext"
    assert MontageGateway.clean_text("<p>A</p><p>continued</p>") == "Acontinued"
    assert MontageGateway.clean_text("<p>One.</p><p>Two &amp; 3</p><p>4</p>") == "One.\nTwo & 3\n4"
    assert MontageGateway.clean_text("") == "" and MontageGateway.clean_text(None) is None


def test_get_requests_are_retried_on_503(montage_fake: FakeMontage) -> None:
    montage_fake.flaky["index/rad/search"] = 2
    assert len(list(endpoint(montage_fake).find({"modality": "MR"}))) == 6
    assert montage_fake.requests["index/rad/search"] == 3
    montage_fake.flaky["index/rad/search"] = 2
    with pytest.raises(EndpointUnavailable, match="503"):
        list(endpoint(montage_fake, retries=1).find({}))
