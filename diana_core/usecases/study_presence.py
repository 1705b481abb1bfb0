"""What an endpoint holds of one study, as the collector asks it: whether the study is there, how many instances
(None when the endpoint cannot count), how many the source reported or a put answered, and removing a partial
copy before a study is sent again. Written against ports only."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import NotFound, NotSupportedError
from diana_core.ports import InstanceCounter

logger = logging.getLogger(__name__)


def reported_instances(tags: Mapping[str, Any]) -> int:
    """Instances the source said the study holds (C-FIND NumberOfStudyRelatedInstances), 0 when it did not say."""
    try:
        return int(tags.get("NumberOfStudyRelatedInstances") or 0)
    except (TypeError, ValueError):
        return 0


def delete_partial(endpoint: Any, oid: str) -> None:
    """Remove a study by id where it may be partial; an absent study is fine, an outage is raised (retried)."""
    try:
        endpoint.delete(oid, level=DicomLevel.STUDIES)
    except NotFound:
        pass
    except NotSupportedError:  # a destination that cannot delete: a partial copy there is completed by the resend
        logger.warning("%s cannot delete a partial study; sending it again over it", getattr(endpoint, "name", "?"))


def study_exists(dest: Any, study: Dixel) -> bool:
    """True when ``dest`` holds (some of) the study; endpoints whose ``exists`` takes no level are asked without."""
    try:
        return bool(dest.exists(study, level=DicomLevel.STUDIES))
    except TypeError:
        return bool(dest.exists(study))


def count_at(endpoint: Any, study: Dixel) -> int | None:
    """Instances ``endpoint`` holds of ``study``; None when it cannot count (no InstanceCounter, or it says so)."""
    if not isinstance(endpoint, InstanceCounter):
        return None
    try:
        return endpoint.count_instances(study, level=DicomLevel.STUDIES)
    except NotSupportedError:
        return None


def delivered_count(result: Any) -> int:
    """Instances delivered, from what the destination's put returned (a count, ids, or a BulkResult)."""
    if isinstance(result, (list, tuple)):
        return len(result)
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    done = getattr(result, "done", None)
    return int(done) + int(getattr(result, "skipped", 0)) if isinstance(done, int) else 0
