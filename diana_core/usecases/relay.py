"""The local pseudonymizing relay: every path pseudonymizes through the one engine (the DcmDir plugin's).

Sources and destinations that cannot pseudonymize themselves (Orthanc, ProxiedDicom, DICOMweb...) get their
data through a temporary DcmDir: download the original, pseudonymize locally, hand the result on. No server-side
anonymization, so every path gives element-for-element the same output and no partial pseudonymized copy is
ever left on a source. The relay is built by ctype through the plugin registry (the core imports no plugin).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import ConfigError, ValidationError
from diana_core.ports import Pseudonymizing
from diana_core.pseudonym import Pseudonymizer
from diana_core.services import build_endpoint

_IDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def pseudonymizing_relay(folder: str | os.PathLike[str], study_zips: bool = False) -> Any | None:
    """A DcmDir(anonymizing) writing into ``folder`` (one zip per study with ``study_zips``), or None."""
    try:
        # scratch zips are stored, not deflated: written, sent once and deleted
        return build_endpoint("DcmDir", {"path": os.fspath(folder), "anonymizing": True, "study_zips": study_zips,
                                         "zip_compression": "stored"}, service_name="pseudonymizing-relay")
    except ConfigError:
        return None


def _relay(folder: str | os.PathLike[str], study_zips: bool = False) -> Any:
    relay = pseudonymizing_relay(folder, study_zips=study_zips)
    if relay is None:
        raise ConfigError("pseudonymizing needs the DcmDir plugin (the one de-identification engine): "
                          "pip install 'diana-dicom[dcmdir]'")
    return relay


def deliver_pseudonymized(parcel: Dixel, dest: Any, pseudonymizer: Pseudonymizer, workdir: str | os.PathLike[str],
                          **kwargs: Any) -> Any:
    """Put ``parcel`` (an instance, or an archive at study/series level) into ``dest`` pseudonymized: by dest
    itself when it is ``Pseudonymizing``, else through a relay folder under ``workdir``. Returns dest's answer."""
    if isinstance(dest, Pseudonymizing):
        return dest.put_pseudonymized(parcel, pseudonymizer, **kwargs)
    folder = Path(tempfile.mkdtemp(prefix="relay-", dir=workdir))
    relay = _relay(folder, study_zips=parcel.level < DicomLevel.INSTANCES)
    written = relay.put_pseudonymized(parcel, pseudonymizer)
    if parcel.level < DicomLevel.INSTANCES:
        zips = sorted(folder.rglob("*.zip"))
        if not zips:
            raise ValidationError("every instance of the archive was quarantined; nothing to deliver")
        return dest.put(Dixel(meta={"FileName": str(zips[0])}, level=parcel.level), **kwargs)
    local: Dixel = relay.get(written, view=DixelView.TAGS_FILE)
    local.meta["FileName"] = os.path.basename(str(local.fn or written))
    return dest.put(local, **kwargs)


def pseudonymize_in(endpoint: Any, item: Any, level: DicomLevel, pseudonymizer: Pseudonymizer | None = None) -> Dixel:
    """Pseudonymize ``item`` held by ``endpoint`` with the local engine and store the result in the same
    endpoint (download, pseudonymize, upload); returns the new item (its id in ``meta["ID"]``)."""
    pz = pseudonymizer or Pseudonymizer()
    with tempfile.TemporaryDirectory(prefix="diana-anon-") as tmp:
        folder = Path(tmp) / "out"
        relay = _relay(folder)
        if level == DicomLevel.INSTANCES:
            original = endpoint.get(item, level=level, view=DixelView.FILE)
            relay.put_pseudonymized(Dixel(file=original.file, meta={"FileName": "original.dcm"}), pz)
        else:
            archive = Path(tmp) / "original.zip"
            endpoint.get(item, level=level, view=DixelView.FILE, dest=str(archive))
            relay.put_pseudonymized(Dixel(meta={"FileName": str(archive)}, level=level), pz)
        written = list(relay.index(keys=_IDS))
        if not written:
            raise ValidationError(f"{getattr(endpoint, 'name', endpoint)!r}: every instance was quarantined")
        for dixel in written:
            endpoint.put(Dixel(meta={"FileName": str(dixel.fn)}, tags=dixel.tags))
        ids = [str(written[0].tag(k)) for k in _IDS[: int(level)]]
    new_id = orthanc_id(*ids)
    return Dixel(meta={"ID": new_id}, tags=dict(zip(_IDS, ids, strict=False)), level=level)
