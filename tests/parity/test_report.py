"""RadiologyReport (#15 item 10): the original's RADCAT / Lung-RADS / BI-RADS / screening extractors on report
texts shaped like its test report (a Lifespan lung-screening template), and report de-identification."""

from __future__ import annotations

import pytest

from diana_core import Dixel
from diana_core.errors import ValidationError
from diana_core.report import LungScreeningReport, RadiologyReport

SCREENING = """HISTORY: Multiple pulmonary nodules, one year follow up

SMOKING HISTORY: Current smoker. About 30 pack years.

COMPARISON: CT chest dated XX/YY/2016

IMPRESSION: Unchanged bilateral pulmonary nodules.

LUNG SCREENING: Benign in appearance/behavior. Lung-RADS category 2S.

RADCAT3: Important, non urgent finding.  Recommend follow up study in 12 months.

RADCAT Grade:RADCAT3: Result with recommendation for follow up. RADCAT4: Priority result.

Reading Resident MD: AAAA BBBB, MD   Date Read:XX/15/2017
Call 401-555-0123 with questions.
Patient MRN:ABCDEFGHIJ          Accession Number:ABCDEDFGIJ
"""


def test_the_originals_screening_report_grades():
    r = LungScreeningReport(text=SCREENING.splitlines(keepends=True))  # the original test passed readlines()
    assert r.current_smoker() is True
    assert r.lungrads() == "2S"
    assert r.radcat() == ("3", True)
    assert r.pack_years() == "30"
    assert r.is_annual()
    assert r.extract() == {"radcat": "3", "radcat3": True, "lungrads": "2S", "birads": None}


def test_birads_takes_the_highest_and_missing_grades_raise():
    mammo = RadiologyReport("Left: BI-RADS 2. Right: BI-RADS CATEGORY 4, suspicious.")
    assert mammo.birads() == "4"
    with pytest.raises(ValidationError):
        mammo.radcat()
    with pytest.raises(ValidationError):
        RadiologyReport("no grade here").birads()
    assert RadiologyReport("RADCAT R1 normal").radcat() == ("1", False)


def test_screening_history_and_bone_age():
    assert RadiologyReport("She quit smoking 5 years ago").years_since_quit() == 5
    assert RadiologyReport("quit 18 months ago").years_since_quit() == 2
    assert RadiologyReport("quit in 2010").years_since_quit(reference_year=2018) == 8
    assert not RadiologyReport("Patient is not currently smoking.").current_smoker()
    bone = RadiologyReport("Chronologic age: 10 years 2 months. Bone age is eleven years 6 months.")
    assert bone.skeletal_age() == ("11", "6") and bone.chronological_age() == ("10", "2")


def test_anonymized_report_drops_phi_lines_radcat_and_phones():
    text = RadiologyReport(SCREENING).anonymized()
    assert "MRN" not in text and "Resident MD" not in text and "RADCAT" not in text
    assert "401-555-0123" not in text and "(555) 555-5555" in text
    assert "Lung-RADS category 2S" in text


def test_montage_json_keeps_the_originals_fields():
    d = Dixel.from_montage_json({
        "accession_number": "A1", "patient_mrn": "M1", "patient_first_name": "Jane", "patient_last_name": "Doe",
        "patient_sex": "F", "patient_age": 61, "patient_status": "Outpatient", "organization": {"label": "Hosp"},
        "exam_type": {"description": "CT CHEST LUNG SCREENING", "code": "CTLS", "modality": {"label": "CT"},
                      "cpts": ["/api/v1/cptcode/71271/"]},
        "events": [{"provider": {"name": "Orderer^Dr"}, "date": "2020-01-02T08:00:00"},
                   {"provider": None, "date": "2020-01-03T09:30:00"},
                   {"provider": {"name": "Reader^Dr"}, "date": "2020-01-03T15:00:00"}],
        "text": SCREENING,
    })
    assert d.meta["PatientName"] == "DOE^JANE" and d.meta["PatientStatus"] == "Outpatient"
    assert d.meta["ReadingPhysiciansName"] == "Reader^Dr" and d.meta["ReportText"] == SCREENING
    assert d.meta["StudyDateTime"].isoformat() == "2020-01-03T09:30:00"  # the event before the read
    assert RadiologyReport(d.report).lungrads() == "2S"
