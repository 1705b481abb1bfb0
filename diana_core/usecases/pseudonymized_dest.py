"""PseudonymizingDest: wrap a destination so every item is pseudonymized locally before it is put there — the
original's ``oput -a`` for ``diana put --anonymize`` and ``diana upload --anonymize``.

Instances go through the local relay (a temporary DcmDir with ``anonymizing``), study archives through the same
relay with study zips; the destination only ever receives the pseudonymized copy. It deliberately exposes no
``put_files`` fast path (which would send originals) and nothing else of the destination.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import ConfigError, DianaError
from diana_core.ports import BulkResult, Progress
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.relay import pseudonymizing_relay

logger = logging.getLogger(__name__)


class PseudonymizingDest:
    """``put``/``put_many`` into ``dest`` after local pseudonymization; ``exists``/``check`` ask ``dest``."""

    def __init__(self, dest: Any, pseudonymizer: Pseudonymizer | None = None) -> None:
        self.dest = dest
        self.name = f"{getattr(dest, 'name', 'dest')} (pseudonymizing)"
        self.pseudonymizer = pseudonymizer  # None: the relay's own plan (project key, default profile)

    def check(self) -> bool:
        return bool(self.dest.check())

    def exists(self, item: Any, **kwargs: Any) -> bool:
        return bool(self.dest.exists(item, **kwargs))

    def pseudonymized(self, item: Dixel, folder: str) -> Dixel:
        """The pseudonymized copy of an instance (file bytes) or of a study/series archive (a zip path)."""
        study = item.level < DicomLevel.INSTANCES
        relay = pseudonymizing_relay(folder, study_zips=study)
        if relay is None:
            raise ConfigError("pseudonymizing needs the DcmDir plugin: pip install 'diana-dicom[dcmdir]'")
        written = relay.put(item) if self.pseudonymizer is None else relay.put_pseudonymized(item, self.pseudonymizer)
        if study:
            zips = sorted(Path(folder).rglob("*.zip"))
            if not zips:
                raise DianaError(f"{self.name}: the archive held no DICOM instance to pseudonymize")
            return Dixel(meta={"FileName": str(zips[-1])}, level=DicomLevel.STUDIES)
        copy: Dixel = relay.get(written, view=DixelView.TAGS_FILE)
        copy.meta["FileName"] = Path(str(copy.fn or written)).name
        return copy

    def put(self, item: Dixel, **kwargs: Any) -> Any:
        with tempfile.TemporaryDirectory(prefix="diana-anon-") as tmp:
            return self.dest.put(self.pseudonymized(item, tmp), **kwargs)

    def put_many(self, items: Iterable[Dixel], workers: int = 1, progress: Progress | None = None) -> BulkResult:
        """Pseudonymize in this thread, upload with the destination's own concurrency."""
        failed: list[tuple[str, str]] = []
        instances: list[Dixel] = []
        studies = 0
        with tempfile.TemporaryDirectory(prefix="diana-anon-") as tmp:
            def copies() -> Iterator[Dixel]:
                for n, item in enumerate(items):
                    if item.level < DicomLevel.INSTANCES:
                        instances.append(item)  # archives go one by one below
                        continue
                    try:
                        yield self.pseudonymized(item, str(Path(tmp) / str(n)))
                    except DianaError as exc:
                        failed.append((item.summary()["id"], str(exc)))

            result = self.dest.put_many(copies(), workers=workers, progress=progress)
            for item in instances:
                try:
                    self.put(item)
                    studies += 1
                except DianaError as exc:
                    failed.append((item.summary()["id"], str(exc)))
        return BulkResult(done=result.done + studies, skipped=result.skipped, failed=failed + list(result.failed))
