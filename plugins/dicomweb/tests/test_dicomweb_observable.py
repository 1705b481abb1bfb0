"""ObservableDicomWeb against a real DICOMweb Orthanc: QIDO date windows across midnight, dedup by UID, series level."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from diana_core import EventType, load_services
from diana_core.errors import ConfigError
from diana_dicomweb import DicomWeb, ObservableDicomWeb
from diana_dicomweb.testing import dicomweb_desc
from diana_orthanc.testdata import ct_dataset


def put_study(dw: DicomWeb, when: datetime, run: str, series: int = 1) -> None:
    for s in range(series):
        ds = ct_dataset(0, series=s, run=run)
        ds.StudyDate, ds.StudyTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        dw.put(buf.getvalue())


def test_emits_each_new_study_once_across_midnight(dicomweb_source):
    obs = load_services({"watch": {**dicomweb_desc(dicomweb_source), "ctype": "ObservableDicomWeb"}})["watch"]
    assert isinstance(obs, ObservableDicomWeb) and obs.polling_interval == 180 and obs.qperiod == 600
    put_study(obs, datetime(2023, 1, 1, 23, 57), "dwobs-a")
    put_study(obs, datetime(2023, 1, 2, 0, 1), "dwobs-b")
    put_study(obs, datetime(2023, 1, 1, 23, 40), "dwobs-old")
    now = datetime(2023, 1, 2, 0, 3)
    first = obs.changes(now=now)
    assert {e.event_type for e in first} == {EventType.STUDY_ADDED}
    assert {e.data.tags["StudyInstanceUID"] for e in first} == {ct_dataset(0, run=r).StudyInstanceUID
                                                                for r in ("dwobs-a", "dwobs-b")}
    assert obs.changes(now=now) == []
    put_study(obs, datetime(2023, 1, 2, 0, 2), "dwobs-c")
    assert [e.data.tags["StudyInstanceUID"] for e in obs.changes(now=now)] == [ct_dataset(0, run="dwobs-c").StudyInstanceUID]


def test_series_level_and_bad_config(dicomweb_source):
    obs = ObservableDicomWeb(**{k: v for k, v in dicomweb_desc(dicomweb_source).items() if k != "ctype"},
                             qlevel="series", query={"Modality": "CT"})
    put_study(obs, datetime(2023, 5, 5, 12, 0), "dwobs-series", series=3)
    events = obs.changes(now=datetime(2023, 5, 5, 12, 5))
    assert len(events) == 3 and {e.event_type for e in events} == {EventType.SERIES_ADDED}
    with pytest.raises(ConfigError):
        ObservableDicomWeb(url="http://127.0.0.1:1/dicom-web", qlevel="instances")
