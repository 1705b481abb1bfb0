"""Date/time windows as C-FIND keys: moved to ``diana_core.dicom.windows`` (DICOMweb polls with them too)."""

from diana_core.dicom.windows import date_window_queries, recent_window_queries

__all__ = ["date_window_queries", "recent_window_queries"]
