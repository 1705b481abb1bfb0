"""The conformance kit (diana_core.testing.conformance) against a real redis-server: contract, TCP faults, a restart
and CLIENT PAUSE."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import TCP_FAULTS, EndpointContract, EndpointFaults, EndpointRestart
from diana_redis import Redis
from diana_redis.testing import RedisServer


def _items() -> list[Dixel]:
    import uuid

    study, series = f"2.25.{uuid.uuid4().int}", f"2.25.{uuid.uuid4().int}"
    return [Dixel(tags={"PatientID": "CONF1", "AccessionNumber": "CONFACC1", "StudyInstanceUID": study,
                        "SeriesInstanceUID": series, "SOPInstanceUID": f"2.25.{uuid.uuid4().int}"}, level="instances")
            for _ in range(3)]


@pytest.fixture
def items() -> list[Dixel]:
    return _items()


@pytest.fixture
def endpoint(redis_clean: RedisServer) -> Redis:
    return Redis(name="conformance-redis", host=redis_clean.host, port=redis_clean.port, socket_timeout=5)


@pytest.fixture
def upstream(redis_server: RedisServer) -> tuple[str, int]:
    return redis_server.host, redis_server.port


@pytest.fixture
def endpoint_at() -> Callable[[str, int], Redis]:
    def build(host: str, port: int) -> Redis:
        return Redis(name="conformance-redis", host=host, port=port, socket_timeout=1)
    return build


class TestRedisContract(EndpointContract):
    levels = ("instances",)  # a registry keeps each item under its own key; no study or series rolls up
    not_applicable = {
        "study_exists_means_complete": "a registry holds the records it was given; it cannot know how many "
                                       "instances a study should have",
    }


class TestRedisFaults(EndpointFaults):
    faults = TCP_FAULTS
    faults_not_applicable = "the Redis protocol, not HTTP: no status codes, login pages or bodies"


class TestRedisRestart(EndpointRestart):
    """redis-server stopped and started again on the same port (persistence off: it comes back empty)."""

    @pytest.fixture
    def server(self) -> Iterator[RedisServer]:
        with RedisServer() as server:
            yield server

    @pytest.fixture
    def endpoint(self, server: RedisServer) -> Redis:
        return Redis(name="conformance-redis", host=server.host, port=server.port, socket_timeout=1)


def test_client_pause_times_out_by_socket_timeout_naming_the_service(items: list[Dixel]) -> None:
    """CLIENT PAUSE (a server that stops answering): put() ends in a one-line EndpointUnavailable within the
    endpoint's socket_timeout (plus redis-py's retries), and nothing is stored."""
    import time

    import redis

    from diana_core.errors import EndpointUnavailable

    with RedisServer() as server:
        endpoint = Redis(name="conformance-redis", host=server.host, port=server.port, socket_timeout=1)
        assert endpoint.check()
        admin = redis.Redis(host=server.host, port=server.port)
        admin.execute_command("CLIENT", "PAUSE", 4000, "ALL")
        start = time.monotonic()
        with pytest.raises(EndpointUnavailable) as err:
            endpoint.put(items[0])
        elapsed = time.monotonic() - start
        admin.execute_command("CLIENT", "UNPAUSE")
        text = str(err.value)
        assert "conformance-redis" in text and "\n" not in text and elapsed < 4, (text, elapsed)
        assert not endpoint.exists(items[0])
        admin.close()
