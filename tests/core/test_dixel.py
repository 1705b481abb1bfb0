"""Dixel, DixelView and cattrs round trips."""

import json
from datetime import datetime

import pytest

from diana_core import DicomLevel, Dixel, DixelView, orthanc_id
from diana_core.errors import ValidationError
from diana_core.serialize import converter, dixel_from_json, to_json

TAGS = {"PatientID": "P1", "StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4", "SOPInstanceUID": "1.2.3.4.5",
        "AccessionNumber": "A100", "SeriesNumber": 3, "InstanceNumber": 12}


def test_view_flags_combine():
    assert DixelView.TAGS_FILE == DixelView.TAGS | DixelView.FILE == 12
    assert DixelView.TAGS in DixelView.TAGS_FILE and DixelView.META not in DixelView.TAGS_FILE
    assert (DixelView.META, DixelView.METAKV, DixelView.PIXELS) == (1, 2, 16)
    assert DixelView.from_label("tags,meta") == DixelView.TAGS | DixelView.META
    with pytest.raises(ValidationError):
        DixelView.from_label("thumbnail")


@pytest.mark.parametrize("level,n", [(DicomLevel.PATIENTS, 1), (DicomLevel.STUDIES, 2), (DicomLevel.SERIES, 3),
                                     (DicomLevel.INSTANCES, 4)])
def test_oid_per_level(level, n):
    values = [TAGS[k] for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")][:n]
    assert Dixel(tags=TAGS, level=level).oid() == orthanc_id(*values)


def test_oid_prefers_meta_id_and_reports_missing_tags():
    assert Dixel(meta={"ID": "abc"}).oid() == "abc"
    with pytest.raises(ValidationError, match="StudyInstanceUID"):
        Dixel(tags={"PatientID": "P"}).oid()


def test_sid_fn_and_image_base_fn():
    d = Dixel(tags=TAGS, level="instances")
    assert d.sid() == "A100"
    d.fn = "x.dcm"
    assert d.meta["FileName"] == "x.dcm" and d.fn == "x.dcm"
    assert d.image_base_fn == "A100-0003-0012"
    assert Dixel(tags={"StudyInstanceUID": "1.2"}).image_base_fn == "1.2-0000-0000"


def test_child_inherits_parent_tags():
    study = Dixel(tags={"PatientID": "P1", "StudyInstanceUID": "1.2.3"})
    series = Dixel(tags={"SeriesInstanceUID": "1.2.3.4"}, level="series", parent=study)
    assert series.oid() == orthanc_id("P1", "1.2.3", "1.2.3.4")


def test_from_orthanc_simplifies():
    d = Dixel.from_orthanc(meta={"ID": "x"}, tags={"StudyDate": "20200101", "StudyTime": "120000",
                                                   "StudyInstanceUID": "1.2"}, level="studies")
    assert d.tags["StudyDateTime"] == datetime(2020, 1, 1, 12)
    assert d.tags["AccessionNumber"] == "1.2"


def test_from_pydicom_duck_typed():
    import pydicom  # a plugin dependency, installed in the dev environment
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    d = Dixel.from_pydicom(ds, fn=path)
    assert d.level == DicomLevel.INSTANCES
    assert d.oid() == "f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af"
    assert d.fn == path and "PixelData" not in d.tags
    json.dumps(converter.unstructure(d.tags))


def test_montage_json_and_csv():
    d = Dixel.from_montage_json({
        "accession_number": "A1", "patient_mrn": "M1", "patient_sex": "F", "patient_age": 40, "text": "report",
        "exam_type": {"description": "CT HEAD", "code": "IMG1", "modality": {"label": "CT"}, "cpts": [{"id": 7}]},
        "events": [{"provider": {"name": "DR X"}, "date": "2020-01-01"}], "organization": {"label": "HUP"}})
    assert d.tags["AccessionNumber"] == "A1" and d.tags["Modality"] == "CT"
    assert d.meta["MontageCPTCodes"] == ["7"] and str(d.report) == "report"
    c = Dixel.from_montage_csv({"Accession Number": "A2", "Patient MRN": "M2", "Patient Last Name": "Doe",
                                "Patient First Name": "Jo"})
    assert c.sid() == "A2" and c.meta["PatientName"] == "DOE^JO"


def test_json_round_trip_keeps_tree_dates_and_file():
    study = Dixel(tags={"PatientID": "P", "StudyInstanceUID": "1.2", "StudyDateTime": datetime(2020, 1, 2, 3)},
                  meta={"k": [1, 2]})
    inst = Dixel(tags={"SeriesInstanceUID": "1.2.3", "SOPInstanceUID": "1.2.3.4"}, level="instances",
                 file=b"\x00\x01DICM", parent=study)
    study.children.append(inst)
    back = dixel_from_json(to_json(study))
    assert back == study
    assert back.children[0] == inst and back.children[0].parent is back
    assert back.tags["StudyDateTime"] == datetime(2020, 1, 2, 3)
