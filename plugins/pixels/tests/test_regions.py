"""Known burned-in regions from the deid recipe (no OCR): a listed device gets its rectangle, others none."""

from __future__ import annotations

from pydicom.dataset import Dataset

from diana_pixels.regions import known_regions


def _ds(**tags) -> Dataset:
    ds = Dataset()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def test_a_listed_dose_screen_gets_its_rectangle_clipped_to_the_image():
    ds = _ds(Modality="CT", Manufacturer="GE MEDICAL SYSTEMS", ManufacturerModelName="LightSpeed VCT",
             ImageType=["DERIVED", "SECONDARY", "SCREEN SAVE"])
    boxes, labels = known_regions(ds, 512, 512)
    assert [(b.frame, b.x0, b.y0, b.x1, b.y1) for b in boxes] == [(-1, 0, 0, 512, 121)] and len(labels) == 1
    small, _ = known_regions(ds, 100, 300)
    assert [(b.x1, b.y1) for b in small] == [(300, 100)]


def test_an_unlisted_device_gets_no_region():
    for ds in (_ds(Modality="US", Manufacturer="Acme"), _ds(Modality="CT", ManufacturerModelName="Other")):
        assert known_regions(ds, 480, 640) == ([], [])
