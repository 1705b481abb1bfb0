"""``diana export-png``: instances from any service as 8-bit PNG images named without PHI (the original's
``diana-cli dgetall ... --view png`` / ImageDir export).

Each instance's file is read, its pixels rescaled to modality values and windowed (the file's own WindowCenter /
WindowWidth, else its value range), and written as ``<orthanc instance id>.png`` — never an accession number or a
patient name. A volume's middle frame is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import click

from diana_core import DicomLevel, DixelView
from diana_core.errors import DianaError


def _window(ds: Any) -> tuple[float, float] | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    def first(value: Any) -> float:
        many = isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"
        return float(value[0]) if many else float(value)

    try:
        return first(center), first(width)
    except (TypeError, ValueError):
        return None


def export_png(endpoint: Any, items: Iterable[Any], folder: str, max_size: int = 1024) -> dict[str, str]:
    """Write each instance of ``endpoint`` as ``folder/<oid>.png``; returns {item label: path or error}."""
    from diana_dcmdir import reading
    from diana_dcmdir.handlers import ImageFileHandler

    images = ImageFileHandler(path=folder)
    done: dict[str, str] = {}
    for n, item in enumerate(items, start=1):
        label = f"item {n}"
        try:
            dixel = endpoint.get(item, level=DicomLevel.INSTANCES, view=DixelView.FILE)
            if dixel.file is None and dixel.fn and os.path.isfile(dixel.fn):
                with open(dixel.fn, "rb") as fh:
                    dixel.file = fh.read()
            if dixel.file is None:
                raise DianaError(f"{getattr(endpoint, 'name', 'service')}: no file for {label}")
            ds = reading.read_bytes(dixel.file, label)
            pixels = reading.rescaled_pixels(ds, label)
            name = reading_oid(ds) + ".png"
            done[label] = images.put(name, pixels, max_size=max_size, window=_window(ds))
        except DianaError as exc:
            done[label] = f"error: {exc}"
    return done


def reading_oid(ds: Any) -> str:
    from diana_core.dicom import orthanc_id

    return orthanc_id(*(str(ds.get(k, "")) for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                                                       "SOPInstanceUID")))


def _command() -> click.Command:
    from diana_core.cli.plugin_api import CliState, pass_state

    @click.command("export-png")
    @click.argument("service")
    @click.argument("items", nargs=-1, required=True)
    @click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder for the PNG files.")
    @click.option("--max-size", default=1024, show_default=True, help="Longest side in pixels.")
    @pass_state
    def export_png_cmd(state: CliState, service: str, items: tuple[str, ...], out: str, max_size: int) -> None:
        """Write instance ITEMS of SERVICE (ids, or file names in a folder) as PNG images named by Orthanc id.

        Example: diana -s services.yml export-png pacs 3ab1d0b2-... -o previews
        """
        os.makedirs(out, exist_ok=True)
        results = export_png(state.endpoint(service), items, out, max_size=max_size)
        state.emit(results, "\n".join(f"{label}: {result}" for label, result in results.items()))
        if any(v.startswith("error:") for v in results.values()):
            raise SystemExit(1)

    return export_png_cmd
