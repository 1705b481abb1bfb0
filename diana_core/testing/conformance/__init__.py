"""The endpoint conformance kit: contract and fault checks a plugin's tests subclass (see docs/writing-a-plugin.md).

``EndpointContract`` checks put/get/exists/find/delete semantics; ``EndpointFaults`` reaches the same endpoint
through ``FaultProxy`` (resets, stalls, login pages, 401/403/404, Retry-After, huge and broken bodies; for DICOM peers
A-ASSOCIATE-RJ, an abort mid-transfer and no response); ``EndpointRestart`` stops and starts the real server.
"""

from diana_core.testing.conformance.contract import BOGUS, CONTRACT_CHECKS, EndpointContract
from diana_core.testing.conformance.dimse import DIMSE_FAULTS
from diana_core.testing.conformance.faults import DIMSE_BATTERY, HTTP_FAULTS, TCP_FAULTS, EndpointFaults
from diana_core.testing.conformance.proxy import FAULTS, FaultProxy, closed_port
from diana_core.testing.conformance.restart import EndpointRestart

__all__ = ["BOGUS", "CONTRACT_CHECKS", "DIMSE_BATTERY", "DIMSE_FAULTS", "FAULTS", "HTTP_FAULTS", "TCP_FAULTS",
           "EndpointContract", "EndpointFaults", "EndpointRestart", "FaultProxy", "closed_port"]
