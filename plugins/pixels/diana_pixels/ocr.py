"""Find identifying text in one frame with Tesseract (through pytesseract) and say which boxes to blank.

The frame is turned into what Tesseract reads best: 8-bit grey, dark text on a light ground (medical screens are
mostly light text on dark), contrast stretched, small images enlarged 2x. Words are grouped into Tesseract's lines
so that dates and IDs split over several words are still found; other text (measurements, labels) is left.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from diana_core.errors import ConfigError
from diana_core.pixels import PixelBox
from diana_pixels.identifiers import HeaderIdentifiers

_SPARSE = "--psm 11"  # sparse text: labels scattered over an image, no page layout


def to_ocr_image(frame: np.ndarray, photometric: str) -> Any:
    """An 8-bit grey PIL image of one (rows, columns, samples) frame: dark text on a light ground, stretched."""
    from PIL import Image, ImageOps

    grey = frame[..., 0] if frame.shape[-1] == 1 else frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114])
    grey = grey.astype(np.float32)
    lo, hi = float(grey.min()), float(grey.max())
    scaled = np.zeros(grey.shape, np.uint8) if hi <= lo else ((grey - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    if photometric == "MONOCHROME1":
        scaled = 255 - scaled
    image = Image.fromarray(scaled)
    if float(np.median(scaled)) < 128:  # light text on a dark ground: Tesseract wants it the other way round
        image = ImageOps.invert(image)
    return ImageOps.autocontrast(image, cutoff=1)


def read_words(image: Any, scale: int) -> list[dict[str, Any]]:
    """Tesseract's words: text, box in the frame's pixels, line key; ConfigError when tesseract is not installed."""
    import pytesseract

    # Tesseract's OpenMP threads fight each other (and Diana's own worker threads): one per call is ~2x faster
    # here, measured on 2 cores; pytesseract passes our environment on to the tesseract process
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale))
    try:
        data = pytesseract.image_to_data(image, config=_SPARSE, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractNotFoundError:
        raise ConfigError("clean-pixels needs the tesseract program: apt-get install tesseract-ocr "
                          "tesseract-ocr-eng") from None
    words = []
    for i, text in enumerate(data["text"]):
        if not str(text).strip():
            continue
        words.append({"text": str(text), "line": (data["block_num"][i], data["par_num"][i], data["line_num"][i]),
                      "box": (data["left"][i] // scale, data["top"][i] // scale,
                              -(-(data["left"][i] + data["width"][i]) // scale),
                              -(-(data["top"][i] + data["height"][i]) // scale))})
    return words


def identifying_boxes(words: list[dict[str, Any]], ids: HeaderIdentifiers, frame: int, rows: int,
                      columns: int) -> list[PixelBox]:
    """Boxes (padded, clipped) of the words that are or hold an identifier; the rest of the text is kept."""
    lines: dict[Any, list[dict[str, Any]]] = {}
    for word in words:
        lines.setdefault(word["line"], []).append(word)
    hits: dict[int, str] = {}
    for line in lines.values():
        text, spans = "", []
        for word in line:
            start = len(text) + (1 if text else 0)
            text = f"{text} {word['text']}" if text else word["text"]
            spans.append((start, len(text)))
        for start, end, why in ids.line_spans(text):
            for word, (a, b) in zip(line, spans):
                if a < end and start < b:
                    hits.setdefault(id(word), f"ocr: {why}")
        named = False
        for word in line:
            if id(word) not in hits and ids.word_matches(word["text"]):
                hits[id(word)] = "ocr: header value"
                named = True
        for word in line if named else ():  # "Jane Do": the rest of a name OCR half-read
            if id(word) not in hits and ids.near_name(word["text"]):
                hits[id(word)] = "ocr: header value"
    boxes = []
    for word in words:
        if id(word) not in hits:
            continue
        why = hits[id(word)]
        x0, y0, x1, y1 = word["box"]
        pad = max(2, (y1 - y0) // 4)
        boxes.append(PixelBox(frame, max(0, x0 - pad), max(0, y0 - pad), min(columns, x1 + pad), min(rows, y1 + pad),
                              why))
    return boxes
