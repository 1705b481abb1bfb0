"""Diana plugin diana-dicom-montage: ``Montage`` endpoint and ``MontageGateway`` REST client (report search)."""

from diana_montage.endpoint import Montage, date_windows, window_query
from diana_montage.gateway import MontageGateway

__all__ = ["Montage", "MontageGateway", "date_windows", "window_query"]
