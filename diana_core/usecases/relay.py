"""The local pseudonymizing relay: a temporary DcmDir with ``anonymizing`` between a source and a destination
that cannot pseudonymize themselves, so originals never reach the destination. Built by ctype through the plugin
registry (the core imports no plugin); ``None`` when the DcmDir plugin is not installed.
"""

from __future__ import annotations

import os
from typing import Any

from diana_core.errors import ConfigError
from diana_core.services import build_endpoint


def pseudonymizing_relay(folder: str | os.PathLike[str], study_zips: bool = False) -> Any | None:
    """A DcmDir(anonymizing) writing into ``folder`` (one zip per study with ``study_zips``), or None."""
    try:
        return build_endpoint("DcmDir", {"path": os.fspath(folder), "anonymizing": True, "study_zips": study_zips},
                              service_name="pseudonymizing-relay")
    except ConfigError:
        return None
