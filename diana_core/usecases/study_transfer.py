"""Moving one study for the collector: its archive streamed through a private temp file, pseudonymized by the
one local engine when asked, delivered, and verified by count at the destination; and dropping the copy a
``StudyRetriever`` (a proxy) made of it. Written against ports only."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import DianaError, IncompleteStudy, is_transient
from diana_core.ports import StudyRetriever
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.jobfiles import count_archive
from diana_core.usecases.relay import deliver_pseudonymized
from diana_core.usecases.study_presence import count_at, delivered_count, reported_instances

# the collector's records: a job's lines come from one logger, whichever module writes them
logger = logging.getLogger("diana_core.usecases.collector")


def transfer_study(study: Dixel, tags: dict[str, Any], source: Any, dest: Any, workdir: Path,
                   pseudonymizer: Pseudonymizer | None, dest_study: Dixel, dest_oid: str = "") -> tuple[int, bool]:
    """Move one study as a zip archive streamed through a private temp file (never whole in memory); returns
    (instances the destination holds, True when it counted them itself), after checking it holds every
    instance reported and sent. ``dest_study`` is the study as the destination will hold it.

    With a ``pseudonymizer`` the original archive is pseudonymized by the one local engine: by a ``Pseudonymizing``
    destination itself, else in a relay folder beside the archive (``relay.deliver_pseudonymized``).
    """
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            archive = Path(tmp) / "study.zip"
            source.get(study, level=DicomLevel.STUDIES, view=DixelView.FILE, dest=str(archive))
            sent = count_archive(archive)
            reported = reported_instances(tags)
            if sent is not None and reported and sent < reported:
                raise IncompleteStudy(f"{source.name}: study {study.summary()['id']}: retrieved {sent} of the "
                                      f"{reported} instances the source reported")
            parcel = Dixel(meta={"FileName": str(archive)}, level=DicomLevel.STUDIES)
            if pseudonymizer is not None:
                result = deliver_pseudonymized(parcel, dest, pseudonymizer, tmp)
            else:
                result = dest.put(parcel)
    finally:
        if isinstance(source, StudyRetriever):
            release_retrieved(source, study)
    expected = max(sent or 0, reported or 0)
    if pseudonymizer is not None:  # instances kept back for burned-in PHI are not owed to the destination
        expected = max(expected - pseudonymizer.report.quarantined_in(study.oid()), 0)
    counted = count_at(dest, dest_study)
    held = delivered_count(result) if counted is None else counted
    if expected and held < expected:
        raise IncompleteStudy(f"{dest.name}: study {dest_oid or study.summary()['id']} holds {held} of the "
                              f"{expected} instances sent")
    return held, counted is not None


def release_retrieved(source: Any, study: Dixel, patience: float = 20.0) -> None:
    """Drop the copy a StudyRetriever made (identified data on a proxy): a proxy that is restarting right now
    gets ``patience`` seconds; a copy that still cannot be removed is logged, never silently left."""
    delay, deadline = 0.2, time.monotonic() + patience
    while True:
        try:
            source.release_study(study)
            return
        except DianaError as exc:
            if not is_transient(exc) or time.monotonic() > deadline:
                logger.warning("%s: the retrieved copy of study %s is still there: %s", source.name,
                               study.summary()["id"], exc)
                return
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
