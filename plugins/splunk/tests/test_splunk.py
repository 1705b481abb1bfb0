"""Splunk endpoint against ``FakeSplunk``: a local HTTP(S) server speaking the documented HEC, search-job and
server-info endpoints. It is a fake because Splunk (a commercial product) cannot run here; the HTTP client side,
TLS verification, batching, polling and paging are the real code."""

from __future__ import annotations

from datetime import datetime

import pytest

from diana_core import Dixel, load_services
from diana_core.errors import AuthenticationError, EndpointUnavailable, ValidationError
from diana_core.usecases.routes import index_item, query_and_index
from diana_splunk import Splunk, SplunkError
from diana_splunk.testing import FakeSplunk, make_self_signed


@pytest.fixture
def fake():
    with FakeSplunk() as server:
        yield server


def splunk(fake: FakeSplunk, **extra) -> Splunk:
    return load_services({"splunk": fake.service_desc(**extra)})["splunk"]


def study(acc: str, when: datetime | None = None) -> Dixel:
    tags = {"PatientID": "P1", "StudyInstanceUID": f"1.2.3.{acc[1:]}", "AccessionNumber": acc, "Modality": "CT"}
    if when:
        tags.update(StudyDate=when.strftime("%Y%m%d"), StudyTime=when.strftime("%H%M%S"))
    return Dixel(tags=tags)


def test_put_posts_the_originals_event_shape(fake):
    ep = splunk(fake)
    when = datetime(2019, 3, 4, 5, 6, 7)
    d = study("A1", when)
    assert ep.put(d) == d.oid()
    (event,) = fake.events
    assert event["index"] == "dicom" and event["sourcetype"] == "_json" and event["host"]
    assert event["time"] == when.timestamp()  # the study's time, not the time of indexing
    body = event["event"]
    assert body["AccessionNumber"] == "A1" and body["level"] == "studies" and body["oid"] == d.oid()
    assert body["StudyDateTime"] == "2019-03-04T05:06:07"


def test_put_many_is_batched(fake):
    ep = splunk(fake, batch_size=4)
    result = ep.put_many(study(f"A{i}") for i in range(10))
    assert result.done == 10 and result.ok
    assert fake.hec_posts == [4, 4, 2]  # three HEC requests for ten events
    assert sorted(e["event"]["AccessionNumber"] for e in fake.events) == sorted(f"A{i}" for i in range(10))


def test_hec_error_codes_become_typed_errors(fake):
    ep = splunk(fake)
    with pytest.raises(SplunkError, match="Incorrect index") as err:
        ep.put(study("A1"), index="nope")
    assert err.value.code == 7
    with pytest.raises(AuthenticationError, match="Invalid token") as auth:
        ep.put(study("A1"), token="wrong-token")
    assert "wrong-token" not in str(auth.value)
    fake.busy = True
    with pytest.raises(EndpointUnavailable, match="busy"):
        ep.put(study("A1"))
    fake.busy = False
    assert fake.events == []
    with pytest.raises(ValidationError):
        ep.put(42)


def test_put_many_records_refused_batches_and_stops_on_a_bad_token(fake):
    ep = splunk(fake, batch_size=2)
    result = ep.put_many([study("A1"), study("A2"), study("A3")], index="nope")
    assert result.done == 0 and len(result.failed) == 3
    with pytest.raises(AuthenticationError):
        splunk(fake, hec_token="bad").put_many([study("A1")])


def test_token_and_password_from_the_environment(fake, monkeypatch):
    desc = {k: v for k, v in fake.service_desc().items() if k not in ("password", "hec_token")}
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", fake.token)
    monkeypatch.setenv("SPLUNK_PASSWORD", fake.password)
    ep = load_services({"s": desc})["s"]
    assert ep.check()
    ep.put(study("A1"))
    assert len(fake.events) == 1
    assert fake.token not in repr(ep) and "hec_token" not in ep.asdict() and "password" not in ep.asdict()


def test_missing_token_is_an_authentication_error(fake, monkeypatch):
    monkeypatch.delenv("SPLUNK_HEC_TOKEN", raising=False)
    desc = {k: v for k, v in fake.service_desc().items() if k != "hec_token"}
    with pytest.raises(AuthenticationError, match="no HEC token"):
        load_services({"s": desc})["s"].put(study("A1"))


def test_find_polls_the_job_and_pages_results(fake):
    ep = splunk(fake)
    ep.put_many(study(f"A{i}") for i in range(8))
    ep.put(study("B1"), index="dose")
    found = list(ep.find({"Modality": "CT"}))
    assert sorted(d.sid() for d in found) == sorted(f"A{i}" for i in range(8))
    assert fake.pages == [(0, 3), (3, 3), (6, 2)]  # the server caps pages at 3 rows: three pages read
    assert fake.requests["GET services/search/jobs"] >= 2  # polled until done
    first = found[0]
    assert first.level.name == "STUDIES" and first.meta["ID"] == first.oid()
    assert [d.sid() for d in ep.find({"AccessionNumber": "B1"}, index="dose")] == ["B1"]
    assert list(ep.find('search index=dicom AccessionNumber="A3"'))[0].sid() == "A3"


def test_bad_search_and_wrong_password(fake):
    with pytest.raises(SplunkError, match="Unknown search command"):
        list(splunk(fake).find("| nonsense"))
    wrong = splunk(fake, password="wrong")
    with pytest.raises(AuthenticationError):
        wrong.check()
    with pytest.raises(AuthenticationError):
        list(wrong.find({"AccessionNumber": "A1"}))


def test_check_reads_server_info_and_reports_outages(fake):
    assert splunk(fake).check() is True
    port = fake.port
    fake.stop()
    assert Splunk(host="127.0.0.1", port=port, protocol="http", password="x").check() is False


def test_tls_is_verified_and_a_ca_path_is_honoured(tmp_path):
    cert, key = make_self_signed(str(tmp_path))
    with FakeSplunk(certfile=cert, keyfile=key) as server:
        with pytest.raises(EndpointUnavailable, match="TLS verification failed"):
            splunk(server).put(study("A1"))
        assert splunk(server).check() is False  # unverifiable server: not usable
        trusted = splunk(server, ca_path=cert)
        assert trusted.check()
        trusted.put(study("A1"))
        assert len(server.events) == 1


def test_index_item_and_query_and_index_honour_index_and_token(fake):
    from diana_core.embedded import MemoryEndpoint

    source = MemoryEndpoint()
    for acc in ("A1", "A2"):
        source.put(study(acc))
    ep = splunk(fake, hec_token="not-the-token")  # only the token passed to the route may work
    index_item(study("A1"), source=source, dest=ep, index="dose", token=fake.token)
    assert [(e["index"], e["event"]["AccessionNumber"]) for e in fake.events] == [("dose", "A1")]
    count = query_and_index({"PatientID": "P1"}, source=source, dest=ep, index="main", token=fake.token)
    assert count == 2 and sorted(e["event"]["AccessionNumber"] for e in fake.events if e["index"] == "main") == \
        ["A1", "A2"]


def test_check_report_to_puts_one_heartbeat_event(fake, tmp_path):
    import yaml
    from click.testing import CliRunner

    from diana_core.cli import cli

    services = tmp_path / "services.yml"
    services.write_text(yaml.safe_dump({"splunk": fake.service_desc(), "folder": {"ctype": "DcmDir",
                                                                                 "path": str(tmp_path)}}))
    out = CliRunner().invoke(cli, ["-s", str(services), "check", "--report-to", "splunk"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    (event,) = fake.events
    assert event["event"] == {"diana_check": {"splunk": "ok", "folder": "ok"}, "ok": True}
    assert event["index"] == "dicom" and event["sourcetype"] == "_json"
