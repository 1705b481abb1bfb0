"""Diana plugin diana-dicom-dicomweb: the ``DicomWeb`` endpoint (QIDO-RS, WADO-RS, STOW-RS) and
``ObservableDicomWeb`` (polls QIDO for new studies)."""

from diana_dicomweb.endpoint import DicomWeb
from diana_dicomweb.errors import StowError, UnexpectedResponse
from diana_dicomweb.observable import ObservableDicomWeb

__all__ = ["DicomWeb", "ObservableDicomWeb", "StowError", "UnexpectedResponse"]
