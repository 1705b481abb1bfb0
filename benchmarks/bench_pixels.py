"""Benchmark: clean-pixels (diana-dicom-pixels) on a 640x480 RGB ultrasound and a 512x512 CT screen, and how
much of a text-free image it blanks.

Per image kind, rounds interleaved on the same rendered images (identifiers drawn with Pillow, as in the tests):
  ours      ``TesseractCleaner.clean`` on the dataset: decode, deid's known regions, two Tesseract passes on the
            frame (plain, background-flattened), match to the header, blank, re-encode (what the engine runs per
            at-risk instance);
  baseline  one bare ``pytesseract.image_to_data`` call (psm 11) on the same frame, already 8-bit grey: the OCR
            alone, which no cleaner can skip.
Then the area blanked on text-free images (ultrasound and CT grounds, several seeds; target <= 1 %) and on images
holding only non-identifying labels (measurements), which must stay.
Usage: python benchmarks/bench_pixels.py [--images 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pytesseract
from PIL import Image

from diana_pixels.cleaner import TesseractCleaner
from diana_pixels.testing import ct_background, dataset, draw, us_background

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
IDS = [("KOWALSKI^MARTA", "DejaVuSans.ttf", 15, (8, 6)), ("MRN4471902", "DejaVuSansMono-Bold.ttf", 13, (8, 26)),
       ("11-Mar-2024", "DejaVuSerif.ttf", 16, (380, 6))]
LABELS = [("Depth 16 cm", "DejaVuSans.ttf", 12, (380, 440)), ("Gain 52", "DejaVuSans.ttf", 12, (200, 440)),
          ("W 400 L 40", "DejaVuSans.ttf", 12, (200, 470))]
HEADER = {"PatientName": "KOWALSKI^MARTA", "PatientID": "MRN4471902", "StudyDate": "20240311"}


def us_image(seed: int, texts: list) -> object:
    grey = us_background(480, 640, seed)
    draw(grey, [(t, f, s, xy, 230) for t, f, s, xy in texts])
    return dataset(np.repeat(grey[..., None], 3, axis=-1), "US", "RGB", **HEADER)


def ct_image(seed: int, texts: list) -> object:
    grey = ct_background(512, 512, seed)
    draw(grey, [(t, f, s, xy, 4000) for t, f, s, xy in texts])
    return dataset(grey, "CT", **HEADER)


def ocr_only(ds: object) -> None:
    arr = ds.pixel_array  # type: ignore[attr-defined]
    grey = arr[..., 0] if arr.ndim == 3 else arr
    grey = ((grey - grey.min()) * (255.0 / max(1, int(grey.max()) - int(grey.min())))).astype(np.uint8)
    pytesseract.image_to_data(Image.fromarray(255 - grey), config="--psm 11")


def rate(kind: str, make, images: int, rounds: int) -> None:
    cleaner = TesseractCleaner()
    ours, base = [], []
    for r in range(rounds):
        sets = [make(100 * r + i, IDS) for i in range(images)]
        t = time.perf_counter()
        for ds in sets:
            ocr_only(ds)
        base.append(images / (time.perf_counter() - t))
        t = time.perf_counter()
        for ds in sets:
            cleaner.clean(ds, kind)
        ours.append(images / (time.perf_counter() - t))
    ratios = sorted(o / b for o, b in zip(ours, base))
    print(f"{kind}: ours {statistics.median(ours):.2f} images/s, bare tesseract {statistics.median(base):.2f} "
          f"images/s; ratio min {ratios[0]:.2f} / median {statistics.median(ratios):.2f} / max {ratios[-1]:.2f}")


def blanked(make, texts: list, seeds: range) -> float:
    cleaner = TesseractCleaner()
    area = total = 0
    for seed in seeds:
        ds = make(seed, texts)
        arr, result = cleaner.find(ds)
        mask = np.zeros(arr.shape[1:3], bool)
        for b in result.boxes:
            mask[b.y0:b.y1, b.x0:b.x1] = True
        area += int(mask.sum())
        total += mask.size
    return area / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.images} images x {args.rounds} rounds per kind")
    rate("US 640x480 RGB", us_image, args.images, args.rounds)
    rate("CT 512x512", ct_image, args.images, args.rounds)
    for name, make in (("US", us_image), ("CT", ct_image)):
        free = blanked(make, [], range(6))
        labels = blanked(make, LABELS, range(3))
        print(f"{name}: area blanked on text-free images {free:.2%} (target <= 1 %), with non-identifying labels "
              f"only {labels:.2%}")


if __name__ == "__main__":
    main()
