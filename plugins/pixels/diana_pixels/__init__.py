"""Diana plugin: clean burned-in identifiers from DICOM pixel data (PS3.15 Clean Pixel Data Option)."""

from diana_pixels.cleaner import TesseractCleaner

__all__ = ["TesseractCleaner"]
