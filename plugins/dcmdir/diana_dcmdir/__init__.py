"""Diana plugin diana-dicom-dcmdir: DICOM folders (``DcmDir``), folder watching (``ObservableDcmDir``) and file handlers.

pydicom, numpy, Pillow and watchdog are imported where used, so importing this package stays cheap.
"""

from diana_dcmdir.dcmdir import DcmDir
from diana_dcmdir.handlers import DcmFileHandler, ImageFileHandler, TextFileHandler
from diana_dcmdir.observable import ObservableDcmDir
from diana_dcmdir.report import ReadReport

__all__ = ["DcmDir", "DcmFileHandler", "ImageFileHandler", "ObservableDcmDir", "ReadReport", "TextFileHandler"]
