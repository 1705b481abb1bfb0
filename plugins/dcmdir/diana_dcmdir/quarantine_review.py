"""Review steps on a job's quarantine: clean what waits (clean-pixels), release reviewed instances.

A release goes through the one engine with the job's own profile and key (checked by key id), so a released
instance is pseudonymized exactly like the rest of the job: a cleaned entry is cleaned again from the original
(OCR is deterministic: the same boxes the contact sheet showed) with 113101 recorded; an entry released as it is
(after a person looked at it) goes with ``allow-burned-in``. Each step is logged in ``quarantine/log.jsonl``;
a release, a disclosure, also in the job's hash-chained audit trail (``JOB/audit.jsonl``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

import attrs

from diana_core.deid_profile import ALLOW_BURNED_IN, Profile
from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError, DianaError, ValidationError
from diana_core.pixels import CLEAN_PIXELS
from diana_core.pseudonym import Pseudonymizer, load_key
from diana_core.quarantine import CLEANED, DELIVERED, RELEASED, WAITING, QuarantineStore

logger = logging.getLogger(__name__)


def clean_waiting(store: QuarantineStore, ids: list[str] | None = None) -> dict[str, str]:
    """Run the pixel cleaner on waiting entries (all, or ``ids``); cleaned copies kept beside the originals.
    Returns {id: "cleaned (N boxes)" or why not}; ConfigError (install line) without the pixels plugin."""
    import pydicom

    from diana_core.plugins import get_plugin_manager
    from diana_dcmdir.reading import dataset_bytes

    cleaner = get_plugin_manager().pixel_cleaner()
    records = [store.entry(i) for i in ids] if ids else [r for r in store.entries() if r["state"] == WAITING]
    out: dict[str, str] = {}
    for record in records:
        qid = record["id"]
        ds = pydicom.dcmread(store.data_path(qid))
        try:
            result = cleaner.clean(ds, qid)
        except ValidationError as exc:
            store.update(qid, note=str(exc))
            out[qid] = f"not cleaned: {exc}"
            continue
        store.write_cleaned(qid, dataset_bytes(ds))
        store.update(qid, state=CLEANED, boxes=[b.asdict() for b in result.boxes], rules=result.rules)
        store.log("clean", id=qid, boxes=len(result.boxes))
        out[qid] = f"cleaned ({len(result.boxes)} boxes)"
    logger.info("quarantine: %d of %d cleaned", sum(v.startswith("cleaned") for v in out.values()), len(out))
    return out


def job_pseudonymizer(store: QuarantineStore, profile: str | None = None, as_is: bool = False) -> Pseudonymizer:
    """The job's pseudonymizer (its profile, uid scheme, key), refusing another key than the job's."""
    context = store.context()
    if not context:
        raise ConfigError(f"quarantine {store.job_dir}: no job.json (which profile and key did the job use?)")
    base = Profile.parse(profile or context.get("profile"))
    extra = {ALLOW_BURNED_IN} if as_is else {CLEAN_PIXELS}
    pz = Pseudonymizer(key=None if context.get("unkeyed") else load_key(), uid_scheme=context.get("uid_scheme",
                       "keyed"), unkeyed=bool(context.get("unkeyed")),
                       profile=attrs.evolve(base, options=base.options | extra))
    if pz.key_id != context.get("key_id"):
        raise ConfigError(f"quarantine {store.job_dir}: the job pseudonymized with key {context.get('key_id')}, "
                          f"this key is {pz.key_id}: set DIANA_PSEUDONYM_KEY to the job's key")
    return pz


def release(store: QuarantineStore, ids: list[str], dest: Any, profile: str | None = None,
            as_is: bool = False) -> dict[str, str]:
    """Send reviewed entries on to ``dest`` through the engine; {id: what was delivered or why not}."""
    from diana_core.audit import AuditTrail
    from diana_core.usecases.relay import deliver_pseudonymized

    context = store.context()
    trail = AuditTrail.for_job(store.job_dir)  # a release is a disclosure: the job's own hash-chained trail
    trail.start("quarantine release", "quarantine", dest, profile or context.get("profile"), context.get("key_id"),
                hide=tuple(ids), items=len(ids), as_is=as_is)
    out: dict[str, str] = {}
    for qid in ids:
        record = store.entry(qid)
        qid = record["id"]
        if record["state"] in (RELEASED, DELIVERED):
            out[qid] = f"already {record['state']}"
            continue
        if record["state"] != CLEANED and not as_is:
            out[qid] = "not cleaned: run diana quarantine clean first, or release --as-is after review"
            continue
        pz = job_pseudonymizer(store, profile, as_is=record["state"] != CLEANED)
        data = store.data_path(qid).read_bytes()
        try:
            with tempfile.TemporaryDirectory(prefix=".release-", dir=store.path) as work:
                answer = deliver_pseudonymized(Dixel(file=data, meta={"FileName": f"{qid}.dcm"},
                                                     level=DicomLevel.INSTANCES), dest, pz, work)
        except DianaError as exc:
            out[qid] = f"not released: {exc}"
            trail.item("failed", original=qid, reason=str(exc))
            continue
        how = "as-is" if record["state"] != CLEANED else "cleaned"
        trail.item("released", instances=1, original=qid, how=how,
                   instance=answer if isinstance(answer, str) and os.sep not in answer else None)
        store.update(qid, state=RELEASED, released_to=getattr(dest, "name", str(dest)), released_how=how)
        store.log("release", id=qid, dest=getattr(dest, "name", ""), how=how, key_id=pz.key_id)
        out[qid] = f"released ({how}) to {getattr(dest, 'name', dest)}: {answer}"
    trail.finish(released=sum(v.startswith("released") for v in out.values()), requested=len(ids))
    return out
