"""Osimis annotations summary, read from a real Orthanc study attachment 9999."""

from __future__ import annotations

import json

from diana_core import Dixel
from diana_core.dicom import DicomLevel
from diana_orthanc import Orthanc, osimis_extras
from diana_orthanc.testdata import ct_dataset, iter_ct_bytes


def test_get_annotation_summarizes_rois_per_instance(clean_orthancs):
    o = Orthanc(**{k: v for k, v in clean_orthancs.local.service_desc().items() if k != "ctype"})
    inst_ids = [o.put(b) for b in iter_ct_bytes(2, run="osimis")]
    ds = ct_dataset(0, run="osimis")
    study = Dixel(tags={"PatientID": ds.PatientID, "StudyInstanceUID": ds.StudyInstanceUID}, level=DicomLevel.STUDIES)
    assert o.get_annotation(study) is None  # no attachment yet
    roi = {"handles": {"start": {"x": 10, "y": 12}, "end": {"x": 30, "y": 40}, "textBox": {"x": 1, "y": 1}},
           "imageResolution": {"width": 8, "height": 8}, "meanStdDev": {"mean": 3.5}}
    length = {"handles": {"start": {"x": 1, "y": 2}, "end": {"x": 3, "y": 4}}, "length": 2.8}
    probe = {"handles": {"end": {"x": 5, "y": 6}}}
    attachment = {
        f"{inst_ids[0]}:0": {"ellipticalRoi": {"data": [roi, roi]}, "length": {"data": [length]}},
        f"{inst_ids[1]}:0": {"probe": {"data": [probe]}},
        "stale:0": {},
    }
    o.gateway.put_attachment(study.oid(), DicomLevel.STUDIES, 9999, json.dumps(attachment))
    summary = osimis_extras.get_annotation(o, study)
    assert summary == o.get_annotation(study)
    assert summary["Counts"] == {"ellipticalRoi": 2, "length": 1, "probe": 1}
    ellipse = next(a for a in summary["Annotations"] if a["Kind"] == "ellipticalRoi")
    assert ellipse["ROIStart"] == (10.0, 12.0) and ellipse["ROIEnd"] == (30.0, 40.0)
    assert ellipse["ROIImageSize"] == (8, 8) and ellipse["SOPInstanceUID"] == ds.SOPInstanceUID
    assert ellipse["InstanceID"] == inst_ids[0] and ellipse["Frame"] == 0
    p = next(a for a in summary["Annotations"] if a["Kind"] == "probe")
    assert p["InstanceID"] == inst_ids[1] and p["ROIEnd"] == (5.0, 6.0) and "ROIStart" not in p
    assert summary["StudyInstanceUID"] == ds.StudyInstanceUID
