"""ReadReport: what a bulk read did with the files it could not read (counted, listed, optionally quarantined)."""

from __future__ import annotations

import logging
import os
import shutil

from attrs import define, field

logger = logging.getLogger(__name__)


@define
class ReadReport:
    """Counts of a bulk read; ``bad`` lists (path, reason) of unreadable files; ``quarantine`` moves them there."""

    quarantine: str | None = None
    read: int = 0
    bad: list[tuple[str, str]] = field(factory=list)

    @property
    def bad_count(self) -> int:
        return len(self.bad)

    @property
    def ok(self) -> bool:
        return not self.bad

    def add_bad(self, path: str, reason: str) -> None:
        """Record an unreadable file and move it to the quarantine folder when one is set."""
        where = path
        if self.quarantine:
            os.makedirs(self.quarantine, exist_ok=True)
            where = os.path.join(self.quarantine, os.path.basename(path))
            stem, ext, n = os.path.splitext(where)[0], os.path.splitext(where)[1], 1
            while os.path.exists(where):
                where, n = f"{stem}.{n}{ext}", n + 1
            try:
                shutil.move(path, where)
            except OSError as exc:
                # file names may carry PHI: the name goes to DEBUG only, the failure report has it
                logger.warning("could not quarantine a bad file: %s", type(exc).__name__)
                logger.debug("could not quarantine %s", path)
                where = path
        self.bad.append((where, reason))
        logger.debug("unreadable file %s: %s", path, reason)
