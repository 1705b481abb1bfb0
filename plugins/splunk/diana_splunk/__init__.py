"""Diana plugin diana-dicom-splunk: the ``Splunk`` endpoint (HEC events in, search jobs out)."""

from diana_splunk.endpoint import Splunk
from diana_splunk.gateway import SplunkError, SplunkGateway

__all__ = ["Splunk", "SplunkError", "SplunkGateway"]
