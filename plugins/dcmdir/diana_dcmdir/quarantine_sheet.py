"""The quarantine's contact sheet: each held-back (or cleaned) instance's first frame, blanked boxes outlined.

It shows identified pixels: it is written owner-only, by default inside the job's quarantine folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

THUMB = 240
_STATE_COLOURS = {"waiting": (230, 160, 0), "cleaned": (0, 170, 255), "released": (0, 200, 90),
                  "delivered": (0, 200, 90)}


def _first_frame(ds: Any) -> Any:
    import numpy as np

    arr = ds.pixel_array
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    grey = arr.astype(np.float32) if samples == 1 else None
    if grey is None:
        return np.clip(arr[..., :3], 0, 255).astype(np.uint8)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = grey.max() - grey
    low, high = float(grey.min()), float(grey.max())
    grey = (grey - low) * (255.0 / (high - low)) if high > low else grey * 0
    return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)


def preview_png(ds: Any) -> bytes:
    """The first frame of a (cleaned) instance as an 8-bit RGB PNG, full size (box coordinates stay valid)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_first_frame(ds)).save(buf, format="PNG")
    return buf.getvalue()


def _image(store: Any, record: dict[str, Any]) -> Any:
    """The picture of a record: its cleaned copy, else the instance as kept, else its preview PNG."""
    import pydicom
    from PIL import Image

    cleaned = store.data_path(record["id"], cleaned=True)
    original = store.data_path(record["id"])
    for path in (cleaned, original):
        if path.is_file():
            return Image.fromarray(_first_frame(pydicom.dcmread(path)))
    return Image.open(store.preview_path(record["id"])).convert("RGB")


def tile(store: Any, records: list[dict[str, Any]]) -> Any:
    """One thumbnail per record (the cleaned copy when there is one), boxes outlined in red; a PIL image."""
    from PIL import Image, ImageDraw

    columns = min(4, max(1, len(records)))
    rows = max(1, -(-len(records) // columns))
    sheet = Image.new("RGB", (columns * (THUMB + 8) + 8, rows * (THUMB + 28) + 8), (24, 24, 24))
    pen = ImageDraw.Draw(sheet)
    for n, record in enumerate(records):
        x, y = 8 + (n % columns) * (THUMB + 8), 8 + (n // columns) * (THUMB + 28)
        try:
            image = _image(store, record)
        except Exception as exc:  # noqa: BLE001 - an undecodable instance is shown as such, the sheet goes on
            pen.text((x + 4, y + THUMB // 2), f"cannot show: {type(exc).__name__}", fill=(255, 80, 80))
            image = None
        if image is not None:
            scale = THUMB / max(image.width, image.height)
            image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
            box_pen = ImageDraw.Draw(image)
            for box in record.get("boxes", []):
                if box["frame"] in (-1, 0):
                    x0, y0, x1, y1 = (int(v * scale) for v in box["box"])
                    box_pen.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=(255, 40, 40), width=2)
            sheet.paste(image, (x, y))
        colour = _STATE_COLOURS.get(record.get("state", ""), (200, 200, 200))
        pen.text((x, y + THUMB + 6), f"{record['id'][:17]} {record.get('state', '')}", fill=colour)
    return sheet


def write_sheet(store: Any, records: list[dict[str, Any]], png: str | os.PathLike[str]) -> Path:
    """Write the sheet as a PNG (0600: it shows identified pixels) and return its path."""
    out = Path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        tile(store, records).save(fh, format="PNG")
    os.replace(tmp, out)
    return out
