"""#30 items 2, 3, 4, 10: what the API reference and the original's own tests say of Dixel.report, Montage JSON,
GUIDMint's classmethods, custom event types, ``MyClass.register()`` and a Dixel's JSON round trip."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from typing import Any

from attrs import define

from diana_core import Dixel, Endpoint, Serializable, Watcher, load_services
from diana_core.guid import GUIDMint
from diana_core.ports import Event
from diana_core.report import RadiologyReport
from diana_core.serialize import dixel_from_json, to_json
from diana_core.usecases.watcher import Trigger

REPORT = "IMPRESSION: nodule. Lung-RADS category 3. RADCAT3: follow up. Left: BI-RADS 2."


def test_dixel_report_is_a_radiology_report_whose_str_is_the_text():
    d = Dixel(tags={"AccessionNumber": "A1"}, report=REPORT)
    assert isinstance(d.report, RadiologyReport)
    assert d.report.radcat() == ("3", True) and d.report.lungrads() == "3" and d.report.birads() == "2"
    assert str(d.report) == REPORT and "nodule" in d.report
    d.report = "RADCAT R1 normal"  # assignment converts too
    assert isinstance(d.report, RadiologyReport) and d.report.radcat() == ("1", False)
    assert Dixel().report is None
    assert isinstance(dixel_from_json(to_json(d)).report, RadiologyReport)


MONTAGE_RESULT: dict[str, Any] = {
    "accession_number": "A7", "patient_mrn": "M7", "patient_sex": "F", "patient_age": 50,
    "exam_type": {"description": "CT ABDOMEN", "code": "CTABD", "modality": {"label": "CT"},
                  "cpts": ["/api/v1/cptcode/501/", {"id": 502}, 503]},
    "events": [{"provider": {"name": "Ref^Dr"}, "date": "2020-01-02T08:00:00"}],
    "text": "<p>EXAM: CT ABDOMEN\r</p><p>FINDINGS: normal &amp; stable.</p><p>IMPRESSION: Lung-RADS 2</p>",
}


def test_montage_json_keeps_cpt_codes_and_plain_report_text():
    d = Dixel.from_montage_json(MONTAGE_RESULT)
    assert d.meta["MontageCPTCodes"] == ["501", "502", "503"]
    text = d.meta["ReportText"]
    assert "<p>" not in text and "&amp;" not in text
    assert text == "EXAM: CT ABDOMEN\n\nFINDINGS: normal & stable.\nIMPRESSION: Lung-RADS 2"
    assert str(d.report) == text and d.report.lungrads() == "2"


def test_guidmint_classmethods_work_on_the_class_and_instances_keep_their_key():
    on_class = GUIDMint.get_sham_id("Bar Z Foo", dob=date(2000, 1, 1))
    assert on_class.ID == "WHLOKMAGICLQGYKC3ZQLLMFKMOX3ZAP2" and on_class.Name == ["WAGENAAR", "HERIBERTO", "L"]
    assert GUIDMint().get_sham_id("Bar Z Foo", dob=date(2000, 1, 1)) == on_class
    assert GUIDMint(key="secret").get_sham_id("Bar Z Foo", dob=date(2000, 1, 1)).ID != on_class.ID
    digest, born = GUIDMint.get_hash("Bar Z Foo", dob="2000-01-01")
    assert GUIDMint.get_id(digest) == on_class.ID and born == date(2000, 1, 1)
    # a datetime is hashed as the original hashed it: with its time
    _, born_dt = GUIDMint.get_hash("Bar Z Foo", dob=datetime(2000, 1, 1))
    assert born_dt == datetime(2000, 1, 1)
    assert GUIDMint.get_sham_id("Bar Z Foo", dob=datetime(2000, 1, 1)).ID != on_class.ID


class MockEventTypes(enum.Enum):
    THIS = "this"
    THAT = "that"


@define(eq=False)
class MockObservable:
    name: str = "mock"
    polling_interval: float = 0.01
    sent: bool = False

    def changes(self) -> list[Event]:
        if self.sent:
            return []
        self.sent = True
        return [Event(event_type=MockEventTypes.THIS, source_name=self.name, data="THIS data"),  # type: ignore[arg-type]
                Event(event_type=MockEventTypes.THAT, source_name=self.name, data="THAT data")]  # type: ignore[arg-type]


def test_trigger_routes_custom_event_types():
    obs = MockObservable()
    seen: list[str] = []
    watcher = Watcher()
    watcher.add_trigger(Trigger(source=obs, event_type=MockEventTypes.THIS, action=seen.append))
    watcher.run(max_seconds=1.0)
    assert seen == ["THIS data"]
    string_trigger = Trigger(source=obs, event_type="that", action=seen.append)
    assert string_trigger.matches(Event(event_type="that", source_name="mock"))  # type: ignore[arg-type]
    assert not string_trigger.matches(Event(event_type="this", source_name="mock"))  # type: ignore[arg-type]


@define(kw_only=True)
class SelfRegisteringEndpoint(Endpoint):
    name: str = "SelfRegisteringEndpoint"
    dummy1: int = 42
    dummy2: int = 43

    def check(self) -> bool:
        return True


def test_subclass_register_really_registers_for_the_factory_and_service_files():
    assert SelfRegisteringEndpoint.register() is SelfRegisteringEndpoint
    assert Serializable.registered("SelfRegisteringEndpoint") is SelfRegisteringEndpoint
    ep = SelfRegisteringEndpoint(name="test", dummy1=10)
    kwargs = ep.asdict()
    assert kwargs.get("dummy1") == 10 and "dummy2" not in kwargs
    ep2 = Serializable.Factory.create(**kwargs)
    assert isinstance(ep2, SelfRegisteringEndpoint) and ep2.name == "test" and ep2.dummy1 == 10 and ep2.check()
    built = load_services({"mine": {"ctype": "SelfRegisteringEndpoint", "dummy2": 7}})["mine"]
    assert isinstance(built, SelfRegisteringEndpoint) and built.dummy2 == 7


def test_dixel_round_trips_through_json_and_the_factory():
    d = Dixel(meta={"FileName": "IM2263", "StudyDateTime": datetime(2020, 1, 2, 3, 4, 5)},
              tags={"AccessionNumber": "A1", "PatientID": "P"}, level="series", report=REPORT)
    text = to_json(d)
    data = json.loads(text)
    assert data["ctype"] == "Dixel"
    back = Serializable.Factory.create(**data)
    assert isinstance(back, Dixel) and back == d and str(back.report) == REPORT
    assert back.meta["StudyDateTime"] == datetime(2020, 1, 2, 3, 4, 5)
    assert Serializable.Factory.create(data) == dixel_from_json(text) == d


def test_the_originals_seed_level_uses_through_the_alias_only_harness(monkeypatch):
    """The original suite's seed-level uses, imported by the original's module names only (tests/parity/aliases)."""
    import attr

    from tests.parity import aliases

    aliases.install(monkeypatch)
    from diana.dixel import Dixel as OldDixel
    from diana.utils import Endpoint as OldEndpoint
    from diana.utils import Serializable as OldSerializable
    from diana.utils.endpoint import Trigger as OldTrigger
    from diana.utils.guid import GUIDMint as OldMint

    @attr.s
    class ScriptEP(OldEndpoint):
        cache = attr.ib(factory=dict, init=False)
        dummy1 = attr.ib(default=42)
        dummy2 = attr.ib(default=43)

        def check(self) -> bool:
            return True

    ScriptEP.register()
    kwargs = ScriptEP(name="test", dummy1=10).asdict()
    assert kwargs.get("dummy1") == 10 and "dummy2" not in kwargs and "cache" not in kwargs
    built = OldSerializable.Factory.create(**kwargs)
    assert isinstance(built, ScriptEP) and built.name == "test" and built.dummy1 == 10 and built.check()

    assert OldMint.get_sham_id(name="Bar Z Foo", dob="2000-01-01")["ID"] == "WHLOKMAGICLQGYKC3ZQLLMFKMOX3ZAP2"
    assert OldDixel(report=REPORT).report.birads() == "2"
    assert OldTrigger(source=MockObservable(), event_type=MockEventTypes.THAT, action=print).event_type \
        is MockEventTypes.THAT
