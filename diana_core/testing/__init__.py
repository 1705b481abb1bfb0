"""Test support shipped with the core (the ``testing`` extra pulls pytest): the endpoint conformance kit.

Nothing in the core imports this package; plugins' tests do (``diana_core.testing.conformance``).
"""
