"""What a mock study of each modality contains: series plans, SOP classes and study-description vocabulary."""

from __future__ import annotations

import random

from attrs import define

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

SOP_CLASSES = {"CT": CT_IMAGE, "MR": MR_IMAGE, "CR": CR_IMAGE, "US": US_IMAGE}
MODALITIES = tuple(SOP_CLASSES)

ANATOMY = {
    "CT": ["HEAD", "CHEST", "ABDOMEN", "ABDOMEN PELVIS", "CHEST ABDOMEN PELVIS", "NECK", "SPINE"],
    "MR": ["BRAIN", "C-SPINE", "L-SPINE", "KNEE", "SHOULDER", "PELVIS", "ABDOMEN"],
    "CR": ["CHEST", "ABDOMEN", "HAND", "KNEE", "FOOT"],
    "US": ["ABDOMEN", "PELVIS", "THYROID", "RENAL", "OB"],
}
CONTRAST = {
    "CT": ["W CONTRAST", "WO CONTRAST", "W WO CONTRAST"],
    "MR": ["W CONTRAST", "WO CONTRAST", "W WO CONTRAST"],
    "CR": ["WO CONTRAST"],
    "US": ["WO CONTRAST"],
}
MR_SEQUENCES = ["T1 AX", "T2 AX", "FLAIR AX", "T1 SAG", "T2 COR", "SWI AX", "T1 POST AX", "T2 FS SAG", "PD COR"]
CT_VOLUMES = ["Axial 5mm", "Axial 2.5mm", "Arterial", "Portal Venous", "Delayed", "Bone 1.25mm"]


@define(frozen=True)
class SeriesPlan:
    """One series to generate: description, instance count, kind (drives pixels and tags), SOP class."""

    description: str
    n_instances: int
    kind: str
    sop_class_uid: str


def _count(n: int, scale: float, max_instances: int | None) -> int:
    n = max(1, round(n * scale))
    return min(n, max_instances) if max_instances else n


def series_plans(modality: str, rng: random.Random, scale: float = 1.0,
                 max_instances: int | None = None) -> list[SeriesPlan]:
    """The series of one study: CT, MR, CR or US plan drawn from ``rng`` (counts scaled, then capped)."""
    sop = SOP_CLASSES[modality]

    def plan(desc: str, n: int, kind: str, sop_class: str = sop) -> SeriesPlan:
        return SeriesPlan(desc, _count(n, scale, max_instances), kind, sop_class)

    plans: list[SeriesPlan] = []
    if modality == "CT":
        plans += [plan("Localizer", 1, "localizer"), plan("Localizer", 1, "localizer")]
        for desc in rng.sample(CT_VOLUMES, rng.randint(1, 3)):
            plans.append(plan(f"Volume {desc}", rng.randint(30, 200), "volume"))
        if rng.random() < 0.15:
            plans.append(plan("Fluoro", rng.randint(5, 20), "fluoro"))
        if rng.random() < 0.4:
            plans.append(plan(f"Reformat {rng.choice(['Coronal', 'Sagittal'])}", rng.randint(20, 80), "reformat"))
        plans.append(SeriesPlan("Dose Report", 1, "report", SECONDARY_CAPTURE))
    elif modality == "MR":
        for _ in range(rng.randint(1, 3)):
            plans.append(plan("Localizer", 3, "localizer"))
        for desc in rng.sample(MR_SEQUENCES, rng.randint(3, 6)):
            plans.append(plan(f"Sequence {desc}", rng.randint(10, 50), "sequence"))
        if rng.random() < 0.5:
            plans.append(plan("Diffusion DWI", rng.randint(10, 50), "diffusion"))
    elif modality == "CR":
        plans += [plan("PA", 1, "pa"), plan("Lateral", 1, "lateral")]
    elif modality == "US":
        plans += [plan("Transverse", rng.randint(2, 8), "transverse"), plan("Sagittal", rng.randint(2, 8), "sagittal"),
                  plan("Cine", rng.randint(3, 10), "cine")]
        if rng.random() < 0.4:
            plans.append(plan("Doppler", rng.randint(1, 4), "doppler"))
        if rng.random() < 0.15:
            plans.append(plan("Bx", rng.randint(1, 3), "biopsy"))
    return plans
