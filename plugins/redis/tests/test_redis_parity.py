"""The original DIANA's Redis test cases (ep_redis_test) against a real redis-server: plain values and
Serializables keyed by hash, ``clear()`` behind a guard, the set helpers, and ``exists(query)``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from attrs import define

from diana_core import Dixel, Serializable, load_services
from diana_core.errors import NotFound, ValidationError
from diana_redis import Redis
from diana_redis.testing import RedisServer


@define
class ParitySample(Serializable):
    """The original test's ``Test(Serializable)`` with one ``data`` field."""

    data: Any = None


Serializable.register(ParitySample)


@pytest.fixture()
def reg(redis_clean: RedisServer) -> Redis:
    return load_services({"reg": redis_clean.service_desc()})["reg"]


def test_serializables_and_plain_values_round_trip(reg: Redis) -> None:
    t = ParitySample(data={"dog": 2, "foo": {"bar": 3}})
    key = reg.put(t)
    assert reg.get(key) == t
    u = ParitySample(data=42)
    key2 = reg.put(u)
    assert reg.get(key2) == u and key2 != key
    reg.update(key, u)
    assert reg.get(key) == u and reg.get(key) != t
    assert reg.exists(key)
    reg.delete(key)
    assert not reg.exists(key)
    a = "one two three"
    key3 = reg.put(a)
    assert key3 == hashlib.md5(json.dumps(a).encode()).hexdigest()  # keyed by a hash, as the original did
    assert reg.get(key3) == a
    assert reg.get(reg.put([1, 2, "x"])) == [1, 2, "x"]
    with pytest.raises(NotFound):
        reg.get("nothing-here")
    with pytest.raises(ValidationError, match="cannot store"):
        reg.put(object())


def test_dixels_still_keyed_by_orthanc_id_and_found_beside_plain_values(reg: Redis) -> None:
    d = Dixel(tags={"PatientID": "P1", "StudyInstanceUID": "1.2.3.1", "AccessionNumber": "A1"})
    reg.put("a plain value")
    assert reg.put(d) == d.oid()
    assert [x.sid() for x in reg.find({"AccessionNumber": "A1"})] == ["A1"]
    assert reg.exists({"AccessionNumber": "A1"})
    assert not reg.exists({"AccessionNumber": "A9"})


def test_clear_needs_confirmation(reg: Redis) -> None:
    key = reg.put("keep me")
    with pytest.raises(ValidationError, match="confirm=True"):
        reg.clear()
    assert reg.exists(key)
    reg.clear(confirm=True)
    assert not reg.exists(key) and reg.skeys() == []


def test_set_helpers_over_the_registry(reg: Redis) -> None:
    assert reg.sput("100", "my_file", "other_file") == 2
    assert reg.sput("100", "my_file") == 0
    reg.sput("200", "x", prefix="pp-")
    assert reg.skeys() == ["100"] and reg.skeys("pp-") == ["200"]
    assert reg.sget("100") == ["my_file", "other_file"]
    assert reg.sget("nope") == []
    # the original's test_redis_index: add_to_collection then collections/collected_items
    reg.add_to_collection(Dixel(meta={"FileName": "f.dcm"}, tags={"AccessionNumber": "300"}), item_key="FileName")
    assert "300" in reg.skeys() and reg.sget("300") == ["f.dcm"]
