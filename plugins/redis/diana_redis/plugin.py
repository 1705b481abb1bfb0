"""Entry point of diana-dicom-redis: registers its endpoint kinds with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Registers ctype "Redis" (imported here so that loading plugins stays cheap)."""
    from diana_redis.endpoint import Redis

    register("Redis", Redis)
