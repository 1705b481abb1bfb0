"""The endpoint contract: CRUD checks every backend's tests run against its real server.

A plugin's test module subclasses ``EndpointContract`` and gives two fixtures: ``endpoint`` (a live, empty endpoint)
and ``items`` (two or more Dixels it can store: by default instances of one study, with file bytes and UIDs). A check
that cannot apply is declared in ``not_applicable`` with the reason; a declared check is not collected.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import DianaError, NotFound
from diana_core.ports import InstanceCounter

BOGUS = "conformance_bogus_option"
UID_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
CONTRACT_CHECKS = ("put_then_get_exists", "put_then_find", "put_twice_is_idempotent", "study_exists_means_complete",
                   "delete_removes", "levels", "not_found_raises", "unknown_keyword_put", "unknown_keyword_get",
                   "unknown_keyword_exists", "unknown_keyword_find", "unknown_keyword_delete")


def _declare(cls: type, known: tuple[str, ...]) -> None:
    """Check a subclass's ``not_applicable`` and hide the declared checks from collection."""
    for check, reason in getattr(cls, "not_applicable", {}).items():
        base = check.split(":", 1)[0]
        if base not in known and not check.startswith("fault:"):
            raise TypeError(f"{cls.__name__}.not_applicable names unknown check {check!r}; known: {', '.join(known)}")
        if not str(reason).strip():
            raise TypeError(f"{cls.__name__}.not_applicable[{check!r}] needs the reason it does not apply")
        if base in known:
            setattr(cls, f"test_{base}", None)  # not collected: declared, with its reason, instead of skipped


class ItemNaming:
    """How an endpoint names items and levels (shared by the contract and the fault battery; override to differ)."""

    level_keyword: ClassVar[str | None] = "level"  # how get/exists/delete/find take the level (None: from the Dixel)

    def ref(self, item: Dixel, level: str = "instances") -> Dixel:
        """The item at ``level``: a Dixel with the UIDs down to that level."""
        lvl = DicomLevel.from_label(level)
        keys = UID_KEYS[: int(lvl)]
        extra = {k: item.tag(k) for k in ("AccessionNumber",) if item.tag(k) is not None}
        return Dixel(tags={**extra, **{k: item.tag(k) for k in keys}}, level=lvl)

    def level_kwargs(self, level: str) -> dict[str, Any]:
        return {self.level_keyword: level} if self.level_keyword else {}


class EndpointContract(ItemNaming):
    """put/get/exists/find/delete semantics. Fixtures: ``endpoint`` (live, empty) and ``items`` (>= 2 Dixels)."""

    not_applicable: ClassVar[dict[str, str]] = {}
    faults_not_applicable: ClassVar[str] = ""  # why no EndpointFaults class runs (a file: no network), for the table
    levels: ClassVar[tuple[str, ...]] = ("studies", "series", "instances")
    identity_key: ClassVar[str] = "SOPInstanceUID"  # the tag that tells two stored items apart

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls, CONTRACT_CHECKS)

    # --- how this endpoint names things (override when it differs) -------------------------------------
    def store(self, endpoint: Any, item: Dixel) -> Any:
        """Get ``item`` into the endpoint: ``put`` by default; a receiver overrides it (a sender stores into it)."""
        return endpoint.put(item)

    def query(self, item: Dixel, level: str = "instances") -> dict[str, Any]:
        """A find() query matching ``item`` (its UIDs down to ``level``)."""
        return {k: v for k, v in self.ref(item, level).tags.items() if k in UID_KEYS}

    def absent(self, item: Dixel) -> Dixel:
        """An item like ``item`` that the endpoint does not hold (fresh UIDs)."""
        fresh = {k: f"2.25.{uuid.uuid4().int}" for k in UID_KEYS[1:]}
        tags = {**item.tags, **fresh, "AccessionNumber": f"NONE{uuid.uuid4().hex[:10]}"}
        return Dixel(tags=tags, level=DicomLevel.INSTANCES)

    def identity(self, item: Any) -> Any:
        return item.tag(self.identity_key) if isinstance(item, Dixel) else None

    def found(self, endpoint: Any, item: Dixel, level: str = "instances") -> list[Any]:
        return [self.identity(d) for d in endpoint.find(self.query(item, level), **self.level_kwargs(level))]

    # --- checks ---------------------------------------------------------------------------------------
    def test_put_then_get_exists(self, endpoint: Any, items: list[Dixel]) -> None:
        name = type(endpoint).__name__
        for item in items:
            assert not endpoint.exists(self.ref(item), **self.level_kwargs("instances")), \
                f"{name}.exists() is True before put (is the endpoint fixture empty?)"
            answer = self.store(endpoint, item)
            assert answer is not None, f"{name}.put() returned None instead of the stored item's id"
        for item in items:
            want = self.identity(item)
            assert endpoint.exists(self.ref(item), **self.level_kwargs("instances")), \
                f"{name}.exists() is False for an item put moments ago ({self.identity_key} {want})"
            got = endpoint.get(self.ref(item), **self.level_kwargs("instances"))
            assert isinstance(got, Dixel), f"{name}.get() returned {type(got).__name__}, not a Dixel"
            assert self.identity(got) == want, f"{name}.get() returned another item: {self.identity(got)} != {want}"

    def test_put_then_find(self, endpoint: Any, items: list[Dixel]) -> None:
        name = type(endpoint).__name__
        assert self.found(endpoint, items[0]) == [], f"{name}.find() lists an item before put (fixture not empty?)"
        for item in items:
            self.store(endpoint, item)
        for item in items:
            found = self.found(endpoint, item)
            assert found == [self.identity(item)], (
                f"{name}.find() of an item put moments ago lists {found}, not [{self.identity(item)}]")

    def test_put_twice_is_idempotent(self, endpoint: Any, items: list[Dixel]) -> None:
        name, item = type(endpoint).__name__, items[0]
        self.store(endpoint, item)
        self.store(endpoint, item)
        matches = self.found(endpoint, item)
        assert matches.count(self.identity(item)) == 1, \
            f"{name}: the same item put twice is stored {matches.count(self.identity(item))} times (find)"
        if isinstance(endpoint, InstanceCounter):
            count = endpoint.count_instances(self.ref(item, "studies"), level=DicomLevel.STUDIES)
            assert count == 1, f"{name}.count_instances() says {count} after the same instance was put twice"

    def test_study_exists_means_complete(self, endpoint: Any, items: list[Dixel]) -> None:
        name = type(endpoint).__name__
        counts = isinstance(endpoint, InstanceCounter)  # kept apart: narrowing would hide put() from the type checker
        assert counts, (
            f"{name} cannot say whether a study is complete (no count_instances): declare "
            "not_applicable['study_exists_means_complete'] with the reason, or implement InstanceCounter")
        study = self.ref(items[0], "studies")
        same_study = [i for i in items if i.tag("StudyInstanceUID") == items[0].tag("StudyInstanceUID")]
        assert endpoint.count_instances(study, level=DicomLevel.STUDIES) == 0, f"{name}: count before put is not 0"
        self.store(endpoint, same_study[0])
        partial = endpoint.count_instances(study, level=DicomLevel.STUDIES)
        assert partial == 1, f"{name}.count_instances() says {partial} after 1 of {len(same_study)} instances"
        for item in same_study[1:]:
            self.store(endpoint, item)
        full = endpoint.count_instances(study, level=DicomLevel.STUDIES)
        assert full == len(same_study), f"{name}.count_instances() says {full}, {len(same_study)} were put"

    def test_delete_removes(self, endpoint: Any, items: list[Dixel]) -> None:
        name = type(endpoint).__name__
        for item in items:
            self.store(endpoint, item)
        gone, kept = self.ref(items[0]), self.ref(items[1])
        assert endpoint.delete(gone, **self.level_kwargs("instances")) is True, f"{name}.delete() of a stored item " \
            "did not return True"
        assert not endpoint.exists(gone, **self.level_kwargs("instances")), f"{name}: exists() after delete()"
        with pytest.raises(NotFound):
            endpoint.get(gone, **self.level_kwargs("instances"))
        assert endpoint.delete(gone, **self.level_kwargs("instances")) is False, \
            f"{name}.delete() of an absent item did not return False"
        assert endpoint.exists(kept, **self.level_kwargs("instances")), f"{name}.delete() removed another item too"

    def test_levels(self, endpoint: Any, items: list[Dixel]) -> None:
        name, item = type(endpoint).__name__, items[0]
        for it in items:
            self.store(endpoint, it)
        for level in self.levels:
            ref = self.ref(item, level)
            assert endpoint.exists(ref, **self.level_kwargs(level)), f"{name}.exists() is False at level {level}"
            got = endpoint.get(ref, **self.level_kwargs(level))
            assert isinstance(got, Dixel), f"{name}.get() at level {level} returned {type(got).__name__}"
            assert got.tag("StudyInstanceUID") == item.tag("StudyInstanceUID"), \
                f"{name}.get() at level {level} returned another study"
        if "delete_removes" in self.not_applicable:
            return
        top = self.levels[0]
        assert endpoint.delete(self.ref(item, top), **self.level_kwargs(top)) is True, \
            f"{name}.delete() at level {top} did not return True"
        under = UID_KEYS[1: int(DicomLevel.from_label(top))]
        for it in items:
            if all(it.tag(k) == item.tag(k) for k in under):
                assert not endpoint.exists(self.ref(it), **self.level_kwargs("instances")), \
                    f"{name}: an instance survived delete() of its {top[:-1]}"

    def test_not_found_raises(self, endpoint: Any, items: list[Dixel]) -> None:
        name, missing = type(endpoint).__name__, self.absent(items[0])
        for level in self.levels:
            ref = self.ref(missing, level)
            with pytest.raises(NotFound):
                answer = endpoint.get(ref, **self.level_kwargs(level))
                pytest.fail(f"{name}.get() of an absent {level[:-1]} returned {answer!r} instead of raising NotFound")
            assert endpoint.exists(ref, **self.level_kwargs(level)) is False, \
                f"{name}.exists() of an absent {level[:-1]} is not False"
        if "delete_removes" not in self.not_applicable:
            assert endpoint.delete(self.ref(missing), **self.level_kwargs("instances")) is False, \
                f"{name}.delete() of an absent item did not return False"
        assert self.found(endpoint, missing) == [], f"{name}.find() lists an item that was never put"

    def _refused(self, endpoint: Any, method: str, *args: Any) -> None:
        name = type(endpoint).__name__
        try:
            answer = getattr(endpoint, method)(*args, **{BOGUS: 1})
            if method == "find":
                answer = list(answer)
        except DianaError as exc:
            assert BOGUS in str(exc), f"{name}.{method}() refused the unknown keyword without naming it: {exc}"
            return
        except TypeError as exc:
            pytest.fail(f"{name}.{method}() refused the unknown keyword with a TypeError, not a DianaError: {exc}")
        shown = answer.summary() if isinstance(answer, Dixel) else repr(answer)[:120]
        pytest.fail(f"{name}.{method}() accepted the unknown keyword {BOGUS!r} (answered {shown}); "
                    "a misspelt option must be refused, naming the known ones")

    def test_unknown_keyword_put(self, endpoint: Any, items: list[Dixel]) -> None:
        self._refused(endpoint, "put", items[0])
        assert not endpoint.exists(self.ref(items[0]), **self.level_kwargs("instances")), \
            f"{type(endpoint).__name__}.put() refused the keyword but stored the item anyway"

    def test_unknown_keyword_get(self, endpoint: Any, items: list[Dixel]) -> None:
        self.store(endpoint, items[0])
        self._refused(endpoint, "get", self.ref(items[0]))

    def test_unknown_keyword_exists(self, endpoint: Any, items: list[Dixel]) -> None:
        self._refused(endpoint, "exists", self.ref(items[0]))

    def test_unknown_keyword_find(self, endpoint: Any, items: list[Dixel]) -> None:
        self._refused(endpoint, "find", self.query(items[0]))

    def test_unknown_keyword_delete(self, endpoint: Any, items: list[Dixel]) -> None:
        self.store(endpoint, items[0])
        self._refused(endpoint, "delete", self.ref(items[0]))
        assert endpoint.exists(self.ref(items[0]), **self.level_kwargs("instances")), \
            f"{type(endpoint).__name__}.delete() refused the keyword but deleted the item anyway"
