"""Shared pytest fixtures: real services started per test session, provided by the plugins' testing modules."""

import os

pytest_plugins = ["diana_orthanc.testing", "diana_redis.testing", "diana_dicomweb.testing"]

# Pseudonymizing refuses without a key (issue #11): the suite has one, never the user's own key file.
os.environ.setdefault("DIANA_PSEUDONYM_KEY", "diana-test-suite-key")

# Folder sources keep their mark in $XDG_STATE_HOME/diana by default (#24): never in the user's own state folder.
os.environ["XDG_STATE_HOME"] = __import__("tempfile").mkdtemp(prefix="diana-test-state-")
