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


def flattened(image: Any) -> Any:
    """The same picture with its large-scale background taken away (|image - blur|, stretched, inverted): text on
    anatomy or on a grey panel stands out as it does on black, which Tesseract's global threshold misses."""
    from PIL import Image, ImageFilter, ImageOps

    a = np.asarray(image, dtype=np.float32)
    ground = np.asarray(image.filter(ImageFilter.BoxBlur(12)), dtype=np.float32)
    diff = np.abs(a - ground)
    top = float(np.percentile(diff, 99.9)) or 1.0
    return ImageOps.invert(Image.fromarray(np.clip(diff * (255.0 / top), 0, 255).astype(np.uint8)))


def read_words(image: Any, scale: int, config: str = _SPARSE, tag: str = "") -> list[dict[str, Any]]:
    """Tesseract's words: text, box in the frame's pixels, line key; ConfigError when tesseract is not installed."""
    import pytesseract

    # Tesseract's OpenMP threads fight each other (and Diana's own worker threads): one per call is ~2x faster
    # here, measured on 2 cores; pytesseract passes our environment on to the tesseract process
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale))
    try:
        data = pytesseract.image_to_data(image, config=config, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractNotFoundError:
        raise ConfigError("clean-pixels needs the tesseract program: apt-get install tesseract-ocr "
                          "tesseract-ocr-eng") from None
    words = []
    for i, text in enumerate(data["text"]):
        if not str(text).strip():
            continue
        words.append({"text": str(text), "line": (tag, data["block_num"][i], data["par_num"][i], data["line_num"][i]),
                      "box": (data["left"][i] // scale, data["top"][i] // scale,
                              -(-(data["left"][i] + data["width"][i]) // scale),
                              -(-(data["top"][i] + data["height"][i]) // scale))})
    return words


def read_frame(image: Any, scale: int, passes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Words from each pass ("plain": the stretched frame, global threshold; "flat": background flattened, local
    Sauvola threshold), their lines kept apart; a word two passes both read is blanked once per pass."""
    words: list[dict[str, Any]] = []
    for name in passes:
        if name == "plain":
            words += read_words(image, scale, _SPARSE, name)
        elif name == "flat":
            words += read_words(flattened(image), scale, f"{_SPARSE} -c thresholding_method=2", name)
        else:
            raise ValueError(f"unknown OCR pass {name!r}; known: plain, flat")
    return words


def identifying_boxes(words: list[dict[str, Any]], ids: HeaderIdentifiers, frame: int, rows: int,
                      columns: int) -> list[PixelBox]:
    """Boxes (padded, clipped) of the words that are or hold an identifier; the rest of the text is kept."""
    lines: dict[Any, list[dict[str, Any]]] = {}
    for word in words:
        lines.setdefault(word["line"], []).append(word)
    hits: dict[int, str] = {}
    widen: dict[int, int] = {}
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
        for word in line:
            missing = None if id(word) in hits else ids.id_part(word["text"])
            if missing is not None:
                hits[id(word)] = "ocr: part of an identifier"
                widen[id(word)] = missing
    boxes = []
    for word in words:
        if id(word) not in hits:
            continue
        x0, y0, x1, y1 = word["box"]
        pad = max(2, (y1 - y0) // 4)
        # the characters OCR did not read are beside the ones it did: widen by their estimated width
        extra = widen.get(id(word), 0) * (x1 - x0) // max(1, len(word["text"]))
        boxes.append(PixelBox(frame, max(0, x0 - pad - extra), max(0, y0 - pad), min(columns, x1 + pad + extra),
                              min(rows, y1 + pad), hits[id(word)]))
    return boxes
