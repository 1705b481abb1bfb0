"""Shared pytest fixtures: real services started per test session, provided by the plugins' testing modules."""

import os

pytest_plugins = ["diana_orthanc.testing", "diana_redis.testing", "diana_dicomweb.testing"]

# Pseudonymizing refuses without a key (issue #11): the suite has one, never the user's own key file.
os.environ.setdefault("DIANA_PSEUDONYM_KEY", "diana-test-suite-key")

# Commands without a job folder (watch, put, upload, index) append to the user's audit trail, and folder sources
# keep their mark in $XDG_STATE_HOME/diana (#24): the suite's own state folder, never the user's.
if "XDG_STATE_HOME" not in os.environ:
    import tempfile

    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="diana-test-state-")
