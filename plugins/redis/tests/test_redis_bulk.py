"""Bulk registration on a real redis-server: what ``add_many`` stores for regular and odd batches (SqliteRegistry is
the independent oracle), and ``add_members``, which takes (collection, member) pairs."""

from __future__ import annotations

from typing import Any

import pytest
import redis as redis_py

from diana_core import DicomLevel, Dixel, load_services
from diana_core.embedded import SqliteRegistry
from diana_core.errors import ValidationError
from diana_core.ports import BulkRegistry, MemberRegistry
from diana_redis import Redis
from diana_redis.registry import INDEX_PREFIX
from diana_redis.testing import RedisServer


def item(acc: Any, fn: Any = None, rel: Any = None) -> Dixel:
    meta = {} if fn is None else {"FileName": fn}
    if rel is not None:
        meta["FilePath"] = rel
    return Dixel(meta=meta, tags={"AccessionNumber": acc}, level=DicomLevel.INSTANCES)


@pytest.fixture()
def reg(redis_clean: RedisServer) -> Redis:
    return load_services({"reg": redis_clean.service_desc()})["reg"]


@pytest.fixture()
def raw(redis_clean: RedisServer) -> Any:
    client = redis_py.Redis(host=redis_clean.host, port=redis_clean.port, decode_responses=True)
    yield client
    client.close()


def stored(raw: Any) -> dict[str, set[str]]:
    return {key: raw.smembers(key) for key in raw.scan_iter(count=1000)}


CASES = {
    # what the FileIndexer hands: FilePath relative to the base, no path to join
    "indexer": [(item(f"A{i // 16}", f"/b/{i}.dcm", f"{i}.dcm"), "p1-", "AccessionNumber", "FilePath", None)
                for i in range(64)],
    # the benchmark's shape: FileName only, already under path
    "under-path": [(item(f"A{i // 10}", f"/base/s/{i}.dcm"), "p2-", "AccessionNumber", "FilePath", "/base")
                   for i in range(40)],
    # long runs, a collection coming back: its runs merge into one set
    "runs revisited": [(item(f"A{i // 16 % 2}", f"{i}.dcm"), "p4-", "AccessionNumber", "FilePath", None)
                       for i in range(48)],
    # a collection's items interleaved (runs of one): grouped entry by entry
    "interleaved": [(item(f"A{i % 3}", f"{i}.dcm"), "p3-", "AccessionNumber", "FilePath", None) for i in range(20)],
    "FilePath on some items only": [(item("A", "/b/1.dcm", "1.dcm"), "", "AccessionNumber", "FilePath", None),
                                    (item("A", "/b/2.dcm"), "", "AccessionNumber", "FilePath", None)],
    "empty FilePath": [(item("A", "/b/1.dcm", ""), "", "AccessionNumber", "FilePath", None)],
    "members outside path": [(item("A", "/base/1.dcm"), "", "AccessionNumber", "FilePath", "/base"),
                             (item("A", "2.dcm"), "", "AccessionNumber", "FilePath", "/base")],
    "number tag": [(item(1234, "1.dcm"), "p-", "AccessionNumber", "FilePath", None)],
    "number member": [(item("A", 77), "p-", "AccessionNumber", "FilePath", None)],
    "two prefixes": [(item("A", "1.dcm"), "p-", "AccessionNumber", "FilePath", None),
                     (item("A", "2.dcm"), "q-", "AccessionNumber", "FilePath", None)],
    "collection key in meta only": [(Dixel(meta={"FileName": "1.dcm", "AccessionNumber": "M"}), "",
                                     "AccessionNumber", "FilePath", None)],
}


@pytest.mark.parametrize("case", CASES)
def test_add_many_stores_and_returns_what_sqlite_does(case: str, reg: Redis, raw: Any) -> None:
    entries = CASES[case]
    sqlite = SqliteRegistry()
    assert reg.add_many(entries) == sqlite.add_many(entries)
    want: dict[str, set[str]] = {}
    for prefix in {e[1] for e in entries}:
        for collection in sqlite.collections(prefix):
            want[prefix + collection] = set(sqlite.collected_items(collection, prefix))
            want.setdefault(INDEX_PREFIX + prefix, set()).add(collection)
    assert stored(raw) == want


def test_add_many_batches_of_different_shapes(reg: Redis, raw: Any) -> None:
    """Batches (cut by islice from an iterator) are written one by one, whatever each holds."""
    reg.batch_size = 20
    entries = CASES["under-path"] + CASES["members outside path"] + CASES["interleaved"]
    names = reg.add_many(iter(entries))
    assert names == SqliteRegistry().add_many(entries)
    assert raw.smembers("A") == {"/base/1.dcm", "/base/2.dcm"}
    assert raw.smembers("p3-A1") == {f"{i}.dcm" for i in range(1, 20, 3)}
    assert reg.total("p2-") == 40 and reg.total("p3-") == 20 and reg.total("") == 2


def test_add_many_missing_tag_still_names_the_item(reg: Redis) -> None:
    good = [(item(f"A{i}", f"{i}.dcm"), "", "AccessionNumber", "FilePath", None) for i in range(3)]
    with pytest.raises(ValidationError, match="AccessionNumber"):
        reg.add_many([*good, (item("", "x.dcm"), "", "AccessionNumber", "FilePath", None)])
    assert reg.total() == 0  # the batch failed before its round trip


def test_add_members_stores_sets_and_the_collection_index(reg: Redis, raw: Any) -> None:
    reg.batch_size = 4  # several round trips
    pairs = [(f"ACC{i % 3}", f"/data/{i}.dcm") for i in range(10)] + [("ACC0", "/data/0.dcm")]
    assert isinstance(reg, MemberRegistry) and isinstance(reg, BulkRegistry)
    assert reg.add_members(iter(pairs), prefix="pp-") == 10  # the duplicate is not new
    assert stored(raw) == {
        "pp-ACC0": {"/data/0.dcm", "/data/3.dcm", "/data/6.dcm", "/data/9.dcm"},
        "pp-ACC1": {"/data/1.dcm", "/data/4.dcm", "/data/7.dcm"},
        "pp-ACC2": {"/data/2.dcm", "/data/5.dcm", "/data/8.dcm"},
        f"{INDEX_PREFIX}pp-": {"ACC0", "ACC1", "ACC2"},
    }
    assert sorted(reg.collections("pp-")) == ["ACC0", "ACC1", "ACC2"] and reg.total("pp-") == 10
    assert reg.add_members(pairs, prefix="pp-") == 0
    assert reg.add_members([("X", "a")]) == 1 and raw.smembers("X") == {"a"} and raw.smembers(INDEX_PREFIX) == {"X"}
    sqlite = SqliteRegistry()
    assert isinstance(sqlite, MemberRegistry)
    assert sqlite.add_members(pairs, prefix="pp-") == 10 and sqlite.add_members(pairs, prefix="pp-") == 0
    assert [sqlite.collected_items(c, "pp-") for c in ("ACC0", "ACC1", "ACC2")] == \
        [reg.collected_items(c, "pp-") for c in ("ACC0", "ACC1", "ACC2")]


@pytest.mark.parametrize("bad", [("ACC-SECRET", None), ("ACC-SECRET", 12), ("", "/data/a.dcm"),
                                 (None, "/data/a.dcm"), ("ACC-SECRET", "")])
def test_add_members_refuses_what_is_not_text_without_naming_it(bad: tuple[Any, Any], reg: Redis) -> None:
    pairs = [("ACC-SECRET", "/data/ok.dcm"), bad]
    for registry in (reg, SqliteRegistry()):
        with pytest.raises(ValidationError, match="add_members") as info:
            registry.add_members(pairs, prefix="pp-")
        assert "SECRET" not in str(info.value) and "ok.dcm" not in str(info.value)
        assert registry.total("pp-") == 0
