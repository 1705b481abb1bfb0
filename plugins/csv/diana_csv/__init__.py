"""Diana plugin diana-dicom-csv: the ``CsvFile`` endpoint (worklists in, item logs out)."""

from diana_csv.endpoint import CsvFile

__all__ = ["CsvFile"]
