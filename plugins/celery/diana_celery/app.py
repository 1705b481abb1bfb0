"""The Celery application shared by Diana's coordinator and workers, and the one place broker failures are translated.

Delivery settings are those that survive a dead worker: late acks, reject on a lost worker, prefetch 1, and a
visibility timeout after which an unacknowledged unit goes to another worker (the units are idempotent).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from diana_core.errors import AuthenticationError, DianaError, EndpointUnavailable

TASK = "diana.run_unit"
QUEUE = "diana"


def safe_url(url: str) -> str:
    """The broker URL without user or password (for messages, logs and status files)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@contextlib.contextmanager
def broker_errors(url: str, what: str) -> Iterator[None]:
    """Translate kombu / redis-py failures into Diana errors naming the broker (never its password) and ``what``."""
    import kombu.exceptions
    import redis.exceptions as rx

    where = f"Celery broker {safe_url(url)}"
    try:
        yield
    except (rx.AuthenticationError, rx.NoPermissionError):
        raise AuthenticationError(f"{where} refused our credentials ({what})") from None
    except rx.ResponseError as exc:
        if str(exc).startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            raise AuthenticationError(f"{where} refused our credentials ({what})") from None
        raise DianaError(f"{where}: {what} failed: {exc}") from exc
    except (kombu.exceptions.OperationalError, rx.ConnectionError, rx.TimeoutError, OSError) as exc:
        raise EndpointUnavailable(f"{where} is unavailable ({what}): {type(exc).__name__}") from exc


def make_app(broker: str, visibility_timeout: float = 3600.0, queue: str = QUEUE) -> Any:
    """A Celery app on ``broker`` with Diana's task registered (used by coordinators and workers alike)."""
    from celery import Celery

    from diana_celery.tasks import run_unit

    app = Celery("diana", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # a dead worker's units come back after visibility_timeout; sweep for them often enough to notice
        broker_transport_options={"visibility_timeout": visibility_timeout, "unacked_restore_throttle": 1,
                                  "unacked_restore_interval": max(1, min(10, int(visibility_timeout / 4)))},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,  # results travel on the coordinator's reply list in Redis
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    app.task(name=TASK, bind=True, max_retries=None, acks_late=True)(run_unit)
    return app


def redis_client(url: str) -> Any:
    """A redis-py client on the broker's Redis (job state, guard, replies live beside the queue)."""
    import redis

    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=30, socket_connect_timeout=10,
                                health_check_interval=30)
