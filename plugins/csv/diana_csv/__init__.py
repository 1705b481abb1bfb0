"""Diana plugin diana-csv: the ``CsvFile`` endpoint (worklists in, item logs out)."""

from diana_csv.endpoint import CsvFile

__all__ = ["CsvFile"]
