"""Fixtures of the DIMSE tests: a real dcmqrscp PACS (diana_dimse.testing) beside the repo's Orthanc fixtures."""

from diana_dimse.testing import dimse_pacs  # noqa: F401 - a fixture
