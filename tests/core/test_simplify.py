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


def test_dose_report_content_is_flattened():
    acq = {"ValueType": "CONTAINER", "ConceptNameCodeSequence": _code("CT Acquisition"), "ContentSequence": [
        {"ValueType": "TEXT", "ConceptNameCodeSequence": _code("Acquisition Protocol"), "TextValue": "HEAD"},
        {"ValueType": "NUM", "ConceptNameCodeSequence": _code("DLP"),
         "MeasuredValueSequence": [{"NumericValue": "12.5"}]},
    ]}
    tags = {"ConceptNameCodeSequence": _code("X-Ray Radiation Dose Report"), "ContentSequence": [
        {"ValueType": "UIDREF", "ConceptNameCodeSequence": _code("Device Observer UID"), "UID": "1.2.3"},
        {"ValueType": "CODE", "ConceptNameCodeSequence": _code("Scope"),
         "ConceptCodeSequence": [{"CodeMeaning": "Study"}]},
        {"ValueType": "DATETIME", "ConceptNameCodeSequence": _code("Start"), "DateTime": "20180101120000"},
        acq,
    ]}
    out = dicom_simplify(tags)
    assert out["Device Observer UID"] == "1.2.3"
    assert out["StationName"] == "1.2.3"
    assert out["Scope"] == "Study"
    assert out["Start"] == datetime(2018, 1, 1, 12)
    assert out["CT Acquisition"] == [{"Acquisition Protocol": "HEAD", "DLP": 12.5}]


def test_repeated_keys_become_lists():
    tags = {"ConceptNameCodeSequence": _code("Report"), "ContentSequence": [
        {"ValueType": "CONTAINER", "ConceptNameCodeSequence": _code("CT Acquisition"), "ContentSequence": []},
        {"ValueType": "CONTAINER", "ConceptNameCodeSequence": _code("CT Acquisition"), "ContentSequence": []},
    ]}
    assert dicom_simplify(tags)["CT Acquisition"] == [{}, {}]
