"""dicom_simplify: datetimes, structured-content flattening and identifier fallbacks."""

from datetime import datetime

from diana_core.dicom import dicom_simplify


def test_datetimes_and_fallbacks():
    out = dicom_simplify({"StudyDate": "20180102", "StudyTime": "030405.123", "StudyInstanceUID": "1.2",
                          "PatientID": "P1", "DeviceSerialNumber": "SN9"})
    assert out["StudyDateTime"] == datetime(2018, 1, 2, 3, 4, 5, 123000)
    assert out["SeriesDateTime"] == out["StudyDateTime"] == out["InstanceCreationDateTime"]
    assert out["AccessionNumber"] == "1.2"
    assert out["PatientName"] == "P1"
    assert out["StationName"] == "SN9"


def test_station_defaults_to_unknown_and_input_is_not_mutated():
    tags = {"SeriesDate": "20180101", "SeriesTime": "1200"}
    out = dicom_simplify(tags)
    assert out["StationName"] == "Unknown"
    assert out["SeriesDateTime"] == datetime(2018, 1, 1, 12, 0)
    assert "StationName" not in tags


def _code(meaning):
    return [{"CodeMeaning": meaning}]


def test_dose_report_content_nests_under_the_report_title():
    """The original's shape: content under "X-Ray Radiation Dose Report" with its ContentDateTime."""
    acq = {"ValueType": "CONTAINER", "ConceptNameCodeSequence": _code("CT Acquisition"), "ContentSequence": [
        {"ValueType": "TEXT", "ConceptNameCodeSequence": _code("Acquisition Protocol"), "TextValue": "HEAD"},
        {"ValueType": "NUM", "ConceptNameCodeSequence": _code("DLP"),
         "MeasuredValueSequence": [{"NumericValue": "12.5"}]},
    ]}
    tags = {"ConceptNameCodeSequence": _code("X-Ray Radiation Dose Report"), "ContentDate": "20180607",
            "ContentTime": "222202.111111", "ContentSequence": [
        {"ValueType": "UIDREF", "ConceptNameCodeSequence": _code("Device Observer UID"), "UID": "1.2.3"},
        {"ValueType": "CODE", "ConceptNameCodeSequence": _code("Scope"),
         "ConceptCodeSequence": [{"CodeMeaning": "Study"}]},
        {"ValueType": "CODE", "ConceptNameCodeSequence": _code("Uncoded")},
        {"ValueType": "DATETIME", "ConceptNameCodeSequence": _code("Start"), "DateTime": "20180101120000"},
        {"ValueType": "IMAGE", "ConceptNameCodeSequence": _code("Picture"), "TextValue": "uuid-1"},
        acq,
    ]}
    out = dicom_simplify(tags)
    report = out["X-Ray Radiation Dose Report"]
    assert set(out) & {"ContentSequence", "ConceptNameCodeSequence", "ContentDate", "ContentTime"} == set()
    assert report["ContentDateTime"] == datetime(2018, 6, 7, 22, 22, 2, 111111)
    assert report["Device Observer UID"] == "1.2.3" and "Device Observer UID" not in out
    assert out["StationName"] == "1.2.3"
    assert report["Scope"] == "Study" and report["Uncoded"] == "UNKNOWN" and report["Picture"] == "uuid-1"
    assert report["Start"] == datetime(2018, 1, 1, 12)
    # a single acquisition is still a list, and a missing CT Dose gets the original's placeholder
    assert report["CT Acquisition"] == [{"Acquisition Protocol": "HEAD", "DLP": 12.5, "CT Dose": {"Mean CTDIvol": 0}}]


def test_repeated_keys_become_lists():
    tags = {"ConceptNameCodeSequence": _code("Report"), "ContentSequence": [
        {"ValueType": "CONTAINER", "ConceptNameCodeSequence": _code("Finding"), "ContentSequence": []},
        {"ValueType": "CONTAINER", "ConceptNameCodeSequence": _code("Finding"), "ContentSequence": []},
    ]}
    assert dicom_simplify(tags)["Report"]["Finding"] == [{}, {}]


def test_usual_date_times_parse_as_strptime_does():
    """The fast path for YYYYMMDD + HHMMSS[.ffffff] gives strptime's answer; anything else still goes through it."""
    import random

    def by_strptime(date: str, time: str) -> datetime | None:  # the strptime-only parser this fast path replaced
        text = f"{date.strip()}{time.strip() or '000000'}"
        head, _, frac = text[8:].partition(".")
        for candidate in (text, text[:8] + head.ljust(6, "0") + (f".{frac}" if frac else "")):
            for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M%S.%f"):
                try:
                    return datetime.strptime(candidate, fmt)
                except ValueError:
                    continue
        return None

    rng = random.Random(17)
    cases = [("20180102", "030405"), ("20180102", "030405.5"), ("20180102", "030405.123456"), ("20181302", "0304"),
             ("20180230", "120000"), ("20180102", "126000"), ("20180102", "030405.1234567"), ("20180102", "03")]
    cases += [("".join(rng.choice("0123456789") for _ in range(8)),
               "".join(rng.choice("0123456789.") for _ in range(rng.randint(1, 10)))) for _ in range(3000)]
    for date, time in cases:
        out = dicom_simplify({"StudyDate": date, "StudyTime": time})
        assert out.get("StudyDateTime") == by_strptime(date, time), (date, time)
