"""Small synthetic images with a plausible shape per modality (numpy; deterministic from a string key).

CT is returned as stored values (HU + 1024, uint16, rescale intercept -1024); MR and CR as uint16 with 12 bits
used; US and secondary captures as uint8.
"""

from __future__ import annotations

import hashlib

import numpy as np

CT_INTERCEPT = -1024


def _rng(key: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big"))


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalized coordinates: y, x in [-1, 1]."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    return y / max(rows - 1, 1) * 2 - 1, x / max(cols - 1, 1) * 2 - 1


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def ct_slice(rows: int, cols: int, key: str, position: float = 0.5) -> np.ndarray:
    """Axial CT: air, an elliptical body with fat rim, lungs (upper slices), a bright spine; stored HU + 1024."""
    rng = _rng(key)
    y, x = _grid(rows, cols)
    hu = np.full((rows, cols), -1000.0, dtype=np.float32)
    scale = 0.85 + 0.1 * np.sin(position * np.pi)
    body = _ellipse(y, x, 0.05, 0.0, 0.62 * scale, 0.9 * scale)
    hu[body] = -90.0  # subcutaneous fat
    hu[_ellipse(y, x, 0.05, 0.0, 0.55 * scale, 0.82 * scale)] = 40.0  # soft tissue
    if position > 0.5:  # chest: two lungs
        for cx in (-0.38, 0.38):
            hu[_ellipse(y, x, -0.02, cx * scale, 0.38 * scale, 0.26 * scale)] = -820.0
    else:  # abdomen: liver-ish blob
        hu[_ellipse(y, x, -0.05, -0.3 * scale, 0.3 * scale, 0.28 * scale)] = 60.0
    hu[_ellipse(y, x, 0.42 * scale, 0.0, 0.1, 0.08)] = 700.0  # vertebral body
    hu[_ellipse(y, x, 0.5 * scale, 0.0, 0.05, 0.04)] = 1000.0  # cortical bone
    hu += rng.normal(0.0, 12.0, size=hu.shape).astype(np.float32) * body
    return np.clip(hu - CT_INTERCEPT, 0, 4095).astype(np.uint16)


def ct_localizer(rows: int, cols: int, key: str) -> np.ndarray:
    """CT scout: a projection-like silhouette (bright body, darker lungs, spine column); stored HU + 1024."""
    rng = _rng(key)
    y, x = _grid(rows, cols)
    hu = np.full((rows, cols), -1000.0, dtype=np.float32)
    body = np.abs(x) <= 0.7 - 0.1 * y**2
    hu[body] = 100.0
    for cx in (-0.33, 0.33):
        hu[_ellipse(y, x, -0.35, cx, 0.4, 0.22)] = -400.0
    hu[np.abs(x) <= 0.07] = 500.0
    hu += rng.normal(0.0, 10.0, size=hu.shape).astype(np.float32)
    return np.clip(hu - CT_INTERCEPT, 0, 4095).astype(np.uint16)


def mr_slice(rows: int, cols: int, key: str, position: float = 0.5, contrast: int = 0) -> np.ndarray:
    """Axial brain-ish MR: scalp, dark skull ring, brain, ventricles; contrast 0/1/2 swaps T1/T2/FLAIR-like grays."""
    rng = _rng(key)
    y, x = _grid(rows, cols)
    grays = [(300, 700, 600, 150), (250, 500, 800, 1100), (250, 550, 750, 120)][contrast % 3]
    scalp, gm, wm, csf = grays
    size = 0.75 + 0.15 * np.sin(position * np.pi)
    img = np.zeros((rows, cols), dtype=np.float32)
    img[_ellipse(y, x, 0.0, 0.0, 0.95 * size, 0.8 * size)] = scalp
    img[_ellipse(y, x, 0.0, 0.0, 0.88 * size, 0.73 * size)] = 20.0  # skull
    img[_ellipse(y, x, 0.0, 0.0, 0.82 * size, 0.67 * size)] = gm
    img[_ellipse(y, x, 0.0, 0.0, 0.6 * size, 0.5 * size)] = wm
    for cx in (-0.12, 0.12):
        img[_ellipse(y, x, -0.05, cx * size, 0.25 * size, 0.07 * size)] = csf
    img += rng.normal(0.0, 15.0, size=img.shape).astype(np.float32) * (img > 0)
    return np.clip(img, 0, 4095).astype(np.uint16)


def cr_chest(rows: int, cols: int, key: str, lateral: bool = False) -> np.ndarray:
    """Chest radiograph: top-down gradient, dark lung fields, bright mediastinum/spine (12-bit, MONOCHROME2)."""
    rng = _rng(key)
    y, x = _grid(rows, cols)
    img = 2600.0 + 500.0 * y
    if lateral:
        img[_ellipse(y, x, -0.1, 0.0, 0.55, 0.45)] = 1200.0
        img[np.abs(x - 0.55) <= 0.08] = 3300.0
    else:
        for cx in (-0.4, 0.4):
            img[_ellipse(y, x, -0.1, cx, 0.55, 0.28)] = 1100.0
        img[np.abs(x) <= 0.12] = 3200.0
    img = img + rng.normal(0.0, 30.0, size=img.shape)
    return np.clip(img, 0, 4095).astype(np.uint16)


def us_frame(rows: int, cols: int, key: str, doppler: bool = False) -> np.ndarray:
    """Ultrasound: a fan-shaped sector of speckle with a dark cyst; 8-bit."""
    rng = _rng(key)
    y, x = _grid(rows, cols)
    yy = (y + 1.0) / 2.0  # 0 at the probe
    angle = np.arctan2(x, yy + 0.05)
    sector = (np.abs(angle) <= 0.6) & (yy <= 0.95)
    speckle = rng.rayleigh(50.0, size=(rows, cols)) * (1.0 - 0.5 * yy)
    img = np.where(sector, speckle, 0.0)
    cyst = _ellipse(y, x, 0.2, 0.05, 0.15, 0.12)
    img[cyst & sector] *= 0.15
    if doppler:
        img[_ellipse(y, x, -0.2, -0.1, 0.05, 0.2) & sector] = 250.0
    return np.clip(img, 0, 255).astype(np.uint8)


def report_page(rows: int, cols: int, key: str) -> np.ndarray:
    """A dose-report screen capture: dark page with text-like bright bars; 8-bit."""
    rng = _rng(key)
    img = np.full((rows, cols), 16, dtype=np.uint8)
    line = max(rows // 12, 2)
    for top in range(line, rows - line, line):
        width = int(rng.integers(cols // 4, cols - 4))
        img[top : top + max(line // 2, 1), 4:width] = 220
    return img


SCREEN_SIZE = (192, 256)  # dose screens: large enough for their burned-in text to be read (and cleaned)


def dose_screen(key: str, lines: list[str]) -> np.ndarray:
    """A dose-report screen capture with burned-in text (patient name, ID, date: what real ones show) above
    text-like bars; 8-bit, ``SCREEN_SIZE``. Pillow's built-in font keeps it the same on every machine."""
    from PIL import Image, ImageDraw, ImageFont

    rows, cols = SCREEN_SIZE
    page = report_page(rows, cols, key)
    page[: 20 * len(lines) + 8, :] = 16
    image = Image.fromarray(page)
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    for n, line in enumerate(lines):
        pen.text((8, 6 + 20 * n), line, fill=230, font=font)
    return np.asarray(image).copy()


def synth_pixels(modality: str, kind: str, rows: int, cols: int, key: str, position: float = 0.5,
                 index: int = 0) -> np.ndarray:
    """Pick the generator for a modality and series kind ("localizer", "volume", "report", "doppler", ...)."""
    if kind == "report":
        return report_page(rows, cols, key)
    if modality == "CT":
        return ct_localizer(rows, cols, key) if kind in ("localizer", "fluoro") else ct_slice(rows, cols, key, position)
    if modality == "MR":
        return mr_slice(rows, cols, key, position, contrast=index)
    if modality == "CR":
        return cr_chest(rows, cols, key, lateral=kind == "lateral")
    if modality == "US":
        return us_frame(rows, cols, key, doppler=kind == "doppler")
    return report_page(rows, cols, key)
