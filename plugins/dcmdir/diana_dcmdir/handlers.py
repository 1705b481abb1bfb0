"""File handlers: read and write DICOM, text and PNG files under a base path with the width/depth layout.

They are the small gateways DcmDir is built on; they know files, not Dixels.
"""

from __future__ import annotations

import os
from typing import Any

from attrs import define

from diana_core.delivery import durable_write
from diana_core.errors import NotFound, ValidationError
from diana_dcmdir import reading
from diana_dcmdir.layout import subpath


def atomic_write(dest: str, data: bytes) -> None:
    """Write bytes to a hidden temp file beside ``dest``, then rename: readers and watchers never see half a file;
    file and folder are fsynced before returning (the delivery contract: a put that returned survives a crash)."""
    durable_write(dest, data)


@define(kw_only=True)
class FileHandler:
    """Base: maps a file name to ``path/<width/depth subpath>/fn``; absolute paths are used as given."""

    name: str = "FileHandler"
    path: str = "."
    subpath_width: int = 2
    subpath_depth: int = 0

    def fullpath(self, fn: str) -> str:
        """Where ``fn`` lives: absolute paths and paths with directories are kept, bare names get the layout."""
        fn = os.fspath(fn)
        if os.path.isabs(fn):
            return fn
        if os.path.dirname(fn):
            return os.path.join(self.path, fn)
        return os.path.join(self.path, subpath(fn, self.subpath_width, self.subpath_depth))

    def _existing(self, fn: str) -> str:
        full = self.fullpath(fn)
        if not os.path.isfile(full):
            raise NotFound(f"{self.name} {self.path!r}: no file {os.path.basename(full)!r}")
        return full


@define(kw_only=True)
class DcmFileHandler(FileHandler):
    """DICOM files: ``get`` returns a pydicom Dataset (header only unless ``get_pixels``), ``put`` writes one."""

    name: str = "DcmFileHandler"

    def get(self, fn: str, get_pixels: bool = False, force: bool = False) -> Any:
        """The dataset of ``fn``; header only (no pixel data read) unless ``get_pixels``. ``force`` is accepted
        for compatibility: preamble-less files are always read when they are valid DICOM."""
        full = self._existing(fn)
        return reading.read_file(full)[1] if get_pixels else reading.read_header(full)

    @staticmethod
    def is_dicom(item: Any) -> bool:
        """True for a path to a readable DICOM file (or DICOM bytes)."""
        if isinstance(item, (bytes, bytearray)):
            return reading.is_dicom_bytes(bytes(item))
        return reading.is_dicom(os.fspath(item))

    def put(self, fn: str, data: Any) -> str:
        """Write a pydicom Dataset or DICOM bytes to ``fn`` (atomically); returns the full path."""
        full = self.fullpath(fn)
        payload = bytes(data) if isinstance(data, (bytes, bytearray)) else reading.dataset_bytes(data)
        atomic_write(full, payload)
        return full


@define(kw_only=True)
class TextFileHandler(FileHandler):
    """Text files (reports): UTF-8 in and out."""

    def get(self, fn: str) -> str:
        """The text of ``fn``."""
        with open(self._existing(fn), encoding="utf-8") as fp:
            return fp.read()

    def put(self, fn: str, data: str) -> str:
        """Write ``data`` as UTF-8 to ``fn``; returns the full path."""
        full = self.fullpath(fn)
        atomic_write(full, str(data).encode("utf-8"))
        return full


@define(kw_only=True)
class ImageFileHandler(FileHandler):
    """8-bit images (PNG by default, any Pillow format by extension)."""

    def get(self, fn: str) -> Any:
        """The image as a numpy array."""
        import numpy as np
        from PIL import Image

        with Image.open(self._existing(fn)) as im:
            return np.asarray(im)

    def put(self, fn: str, data: Any, max_size: int = 1024, window: tuple[float, float] | None = None) -> str:
        """Write a 2-D (or RGB) array as an 8-bit image, squashed to 0-255 and shrunk to fit ``max_size``."""
        import io

        import numpy as np
        from PIL import Image

        arr = np.asarray(data)
        if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
            arr = arr[arr.shape[0] // 2]  # a volume: its middle slice
        if arr.ndim not in (2, 3):
            raise ValidationError(f"{self.name}: cannot write an image of shape {arr.shape}")
        img = Image.fromarray(self.squash_to_8bit(arr, window=window))
        if max_size and max(img.size) > max_size:
            img.thumbnail((max_size, max_size))
        full = self.fullpath(fn)
        buf = io.BytesIO()
        img.save(buf, format=(os.path.splitext(full)[1][1:] or "png").upper().replace("JPG", "JPEG"))
        atomic_write(full, buf.getvalue())
        return full

    @staticmethod
    def squash_to_8bit(data: Any, window: tuple[float, float] | None = None) -> Any:
        """Map values to uint8: a (center, width) window when given, else the data's own min..max range."""
        import numpy as np

        arr = np.asarray(data, dtype=np.float64)
        if window is not None:
            center, width = window
            low, high = center - width / 2.0, center + width / 2.0
        else:
            low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if high <= low:
            return np.zeros(arr.shape, dtype=np.uint8)
        scaled = (np.clip(arr, low, high) - low) * (255.0 / (high - low))
        return np.rint(scaled).astype(np.uint8)
