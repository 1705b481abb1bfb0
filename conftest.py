"""Shared pytest fixtures: real services started per test session, provided by the plugins' testing modules."""

pytest_plugins = ["diana_orthanc.testing", "diana_redis.testing", "diana_dicomweb.testing"]
