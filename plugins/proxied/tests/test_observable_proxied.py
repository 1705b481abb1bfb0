"""ObservableProxiedDicom against the real Orthanc pair: windowed polling, midnight, dedup by UID, history."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from diana_core import EventType, load_services
from diana_core.dicom import DicomLevel
from diana_core.errors import ConfigError
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_dataset
from diana_proxied import ObservableProxiedDicom


def put_study(server, when: datetime, run: str, series: int = 1) -> None:
    o = Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"})
    for s in range(series):
        ds = ct_dataset(0, series=s, run=run)
        ds.StudyDate, ds.StudyTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        o.put(buf.getvalue())


def test_emits_each_new_study_once_across_midnight(clean_orthancs):
    obs = load_services({"watch": {"ctype": "ObservableProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                                   "qperiod": 600}})["watch"]
    assert isinstance(obs, ObservableProxiedDicom) and obs.polling_interval == 180 and obs.history_len == 200
    put_study(clean_orthancs.remote, datetime(2023, 1, 1, 23, 57), "obs-a")
    put_study(clean_orthancs.remote, datetime(2023, 1, 2, 0, 1), "obs-b")
    put_study(clean_orthancs.remote, datetime(2023, 1, 1, 23, 40), "obs-old")
    now = datetime(2023, 1, 2, 0, 3)
    first = obs.changes(now=now)
    assert all(e.event_type == EventType.STUDY_ADDED for e in first)
    assert {e.data.tags["StudyInstanceUID"] for e in first} == {ct_dataset(0, run=r).StudyInstanceUID
                                                                for r in ("obs-a", "obs-b")}
    assert obs.changes(now=now) == []
    put_study(clean_orthancs.remote, datetime(2023, 1, 2, 0, 4), "obs-c")
    later = obs.changes(now=datetime(2023, 1, 2, 0, 6))
    assert [e.data.tags["StudyInstanceUID"] for e in later] == [ct_dataset(0, run="obs-c").StudyInstanceUID]


def test_series_level_emits_series_added(clean_orthancs):
    obs = ObservableProxiedDicom(proxy_desc=clean_orthancs.local.service_desc(), qlevel="series", qperiod=300)
    put_study(clean_orthancs.remote, datetime(2023, 2, 1, 9, 0), "obs-series", series=2)
    events = obs.changes(now=datetime(2023, 2, 1, 9, 2))
    assert [e.event_type for e in events] == [EventType.SERIES_ADDED] * 2
    assert len({e.data.tags["SeriesInstanceUID"] for e in events}) == 2
    assert events[0].data.level == DicomLevel.SERIES


def test_history_forgets_oldest_beyond_history_len():
    obs = ObservableProxiedDicom(proxy_desc={}, history_len=2)
    assert [obs._remember(k) for k in ("a", "b", "a", "c", "a")] == [True, True, False, True, True]


def test_bad_config_is_config_error():
    with pytest.raises(ConfigError):
        ObservableProxiedDicom(proxy_desc={}, qlevel="instances")
