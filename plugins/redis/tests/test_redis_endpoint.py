"""Redis endpoint and registry against real redis-server processes (started by diana_redis.testing fixtures)."""

from __future__ import annotations

import hashlib

import pytest
import redis as redis_py

from diana_core import DicomLevel, Dixel, load_services
from diana_core.embedded import SqliteRegistry
from diana_core.errors import AuthenticationError, EndpointUnavailable, NotFound, ValidationError
from diana_core.ports import Registry
from diana_redis import Redis, prefix_for_path
from diana_redis.testing import RedisServer


def study(acc: str, pid: str = "P1", uid: str | None = None) -> Dixel:
    return Dixel(tags={"PatientID": pid, "StudyInstanceUID": uid or f"1.2.3.{acc[1:]}", "AccessionNumber": acc,
                       "StudyDescription": f"CT {acc}"})


def file_item(acc: str, fn: str) -> Dixel:
    return Dixel(meta={"FileName": fn}, tags={"AccessionNumber": acc}, level=DicomLevel.INSTANCES)


@pytest.fixture()
def reg(redis_clean: RedisServer) -> Redis:
    return load_services({"reg": redis_clean.service_desc()})["reg"]


def test_put_get_round_trip_keyed_by_orthanc_id(reg: Redis) -> None:
    d = study("A100")
    d.meta["Note"] = "x"
    key = reg.put(d)
    assert key == d.oid()
    back = reg.get(key)
    assert back == d and back.meta["Note"] == "x"
    assert reg.exists(d) and not reg.exists("nope")


def test_find_update_delete(reg: Redis) -> None:
    for acc in ("A1", "A2", "A3"):
        reg.put(study(acc))
    reg.put(study("A9"), key="custom-key")
    assert [d.sid() for d in reg.find({"AccessionNumber": "A2"})] == ["A2"]
    assert len(reg.find({"PatientID": "P1", "AccessionNumber": "*"})) == 4
    assert reg.find({"PatientID": "P1"}, level="series") == []
    reg.update(study("A1"), {"StudyDescription": "MR", "_Status": "done"})
    got = reg.get(study("A1"))
    assert got.tags["StudyDescription"] == "MR" and got.meta["Status"] == "done"
    assert reg.delete(study("A1")) is True
    assert reg.delete(study("A1")) is False
    with pytest.raises(NotFound, match="reg"):
        reg.get(study("A1"))
    assert reg.get("custom-key").sid() == "A9"


def test_registry_layout_matches_design(reg: Redis, redis_clean: RedisServer) -> None:
    """A set per collection named prefix + AccessionNumber holding file paths (DESIGN §7)."""
    prefix = prefix_for_path("/data/incoming")
    assert prefix == hashlib.md5(b"/data/incoming").hexdigest()[:4] + "-"
    name = reg.add_to_collection(file_item("ACC1", "a.dcm"), prefix=prefix, path="/data/incoming")
    assert name == f"{prefix}ACC1"
    raw = redis_py.Redis(host=redis_clean.host, port=redis_clean.port, decode_responses=True)
    assert raw.smembers(name) == {"/data/incoming/a.dcm"}
    raw.close()


def test_add_many_collections_totals_and_signature_parity_with_sqlite(reg: Redis) -> None:
    """Redis and SqliteRegistry give the same answers for the same registrations."""
    sqlite = SqliteRegistry()
    entries = [(file_item(f"ACC{i % 7}", f"f{i}.dcm"), "pp-", "AccessionNumber", "FilePath", "/base") for i in range(50)]
    entries.append((file_item("OTHER", "x.dcm"), "qq-", "AccessionNumber", "FilePath", None))
    entries.append(entries[0])  # a duplicate counts once
    assert reg.add_many(entries) == sqlite.add_many(entries)
    assert isinstance(reg, Registry)
    assert sorted(reg.collections("pp-")) == sorted(sqlite.collections("pp-")) == [f"ACC{i}" for i in range(7)]
    assert reg.collected_items("ACC3", "pp-") == sqlite.collected_items("ACC3", "pp-")
    assert "/base/f3.dcm" in reg.collected_items("ACC3", "pp-")
    assert reg.total("pp-") == sqlite.total("pp-") == 50
    assert reg.total("qq-") == 1 and reg.total() == 51 and reg.total("zz-") == 0
    assert reg.delete("ACC3", prefix="pp-") is True
    assert "ACC3" not in set(reg.collections("pp-")) and reg.total("pp-") == 50 - 7


def test_add_many_uses_one_round_trip_per_batch(reg: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    reg.batch_size = 100
    calls = []
    real = redis_py.client.Pipeline.execute
    monkeypatch.setattr(redis_py.client.Pipeline, "execute", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    reg.add_many((file_item(f"A{i % 13}", f"{i}.dcm"), "", "AccessionNumber", "FilePath", None) for i in range(1000))
    assert len(calls) == 10
    assert reg.total() == 1000


def test_collections_fall_back_to_scan_for_legacy_sets(reg: Redis, redis_clean: RedisServer) -> None:
    """Sets written without the index (e.g. by the original DIANA) are still listed and counted, without KEYS."""
    raw = redis_py.Redis(host=redis_clean.host, port=redis_clean.port)
    raw.sadd("ab*c-ACC1", "/x/1", "/x/2")
    raw.sadd("ab*c-ACC2", "/x/3")
    raw.sadd("abXc-ACC3", "/x/4")  # "*" in the prefix must not act as a wildcard
    raw.close()
    assert sorted(reg.collections("ab*c-")) == ["ACC1", "ACC2"]
    assert reg.total("ab*c-") == 3


def test_missing_collection_key_is_a_validation_error(reg: Redis) -> None:
    with pytest.raises(ValidationError, match="AccessionNumber"):
        reg.add_to_collection(Dixel(meta={"FileName": "a.dcm"}))


def test_password_protected_server(redis_server_auth: RedisServer) -> None:
    good = Redis(name="secure", host=redis_server_auth.host, port=redis_server_auth.port,
                 password=redis_server_auth.password)
    assert good.check() is True
    good.add_to_collection(file_item("A", "a.dcm"), prefix="t-")
    assert good.total("t-") == 1
    for bad in (Redis(name="secure", host=redis_server_auth.host, port=redis_server_auth.port, password="wrong"),
                Redis(name="secure", host=redis_server_auth.host, port=redis_server_auth.port)):
        with pytest.raises(AuthenticationError, match="secure") as info:
            bad.get("x")
        assert "wrong" not in str(info.value)
        with pytest.raises(AuthenticationError):
            bad.check()


def test_stopped_server_is_endpoint_unavailable() -> None:
    server = RedisServer().start()
    ep = Redis(name="gone", host=server.host, port=server.port, socket_timeout=2)
    assert ep.check() is True
    server.stop()
    assert ep.check() is False
    with pytest.raises(EndpointUnavailable, match="gone") as info:
        ep.add_to_collection(file_item("A", "a.dcm"))
    assert not isinstance(info.value, AuthenticationError)
    with pytest.raises(EndpointUnavailable):
        list(ep.collections())


def test_file_indexer_registers_into_redis(reg: Redis, tmp_path) -> None:
    """The core FileIndexer uses the Redis registry as it uses SqliteRegistry (same answers)."""
    import shutil

    import pydicom
    from pydicom.data import get_testdata_file

    from diana_core import FileIndexer

    for i, name in enumerate(["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"]):
        (tmp_path / f"d{i}").mkdir()
        shutil.copy(get_testdata_file(name), tmp_path / f"d{i}" / name)
    def reader(path: str) -> Dixel:  # header-only, without depending on the DcmDir plugin
        return Dixel.from_pydicom(pydicom.dcmread(path, stop_before_pixels=True), fn=path)

    indexer = FileIndexer()
    result = indexer.index_path(tmp_path, reg, collection_key="StudyInstanceUID", reader=reader)
    sqlite = SqliteRegistry()
    indexer.index_path(tmp_path, sqlite, collection_key="StudyInstanceUID", reader=reader)
    prefix = prefix_for_path(str(tmp_path))
    assert result.registered == 3 and FileIndexer.files_on_path(tmp_path, reg) == 3
    assert len(list(reg.collections(prefix))) == 3
    assert sorted(reg.collections(prefix)) == sorted(sqlite.collections(prefix))
    for name in reg.collections(prefix):
        assert reg.collected_items(name, prefix) == sqlite.collected_items(name, prefix)
