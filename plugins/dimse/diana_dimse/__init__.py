"""Diana plugin diana-dicom-dimse: DICOM networking without Orthanc (pynetdicom; C-STORE also on dcmtk's tools).

``DicomNode`` talks to a PACS or modality directly (C-ECHO, C-FIND, C-MOVE/C-GET, C-STORE); ``DicomReceiver`` is
a C-STORE SCP that writes what it receives into a folder and reports INSTANCE_ADDED / STUDY_STABLE events.
"""

from diana_dimse.errors import AssociationRejected, DimseStatusError, NodeBusy, RetrieveIncomplete
from diana_dimse.node import DicomNode
from diana_dimse.receiver import DicomReceiver

__all__ = ["AssociationRejected", "DicomNode", "DicomReceiver", "DimseStatusError", "NodeBusy", "RetrieveIncomplete"]
