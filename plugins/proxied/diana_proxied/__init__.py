"""Diana plugin diana-dicom-proxied: a remote DICOM modality reached through an Orthanc proxy (C-FIND, C-MOVE, C-ECHO)."""

from __future__ import annotations

from diana_proxied.endpoint import ProxiedDicom
from diana_proxied.observable import ObservableProxiedDicom
from diana_proxied.windows import date_window_queries, recent_window_queries

__all__ = ["ObservableProxiedDicom", "ProxiedDicom", "date_window_queries", "recent_window_queries"]
