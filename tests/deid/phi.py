"""Generated DICOM files with PHI in hard places, for the de-identification tests (real pydicom files).

Free text, nested sequences (three deep), private tags and private sequences, a public tag unknown to the
dictionary stored as VR UN, a known public tag stored as UN, non-ASCII character sets (UTF-8 and ISO 2022 IR 87),
file meta AE titles and private information, overlay comments, cross-file references.
"""

from __future__ import annotations

import io
import uuid

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

NAME = "HARDCASE^HILDEGARD^Q"
PATIENT_ID = "HMRN7731"
ACCESSION = "HACC55120"
BIRTH = "19610417"
# every value that must not survive any path or profile (as text; checked in the bytes too)
SECRETS = (NAME, "HARDCASE", "Yamada", "Tarou", "MÜLLER^Jürgen", "HILDEGARD", PATIENT_ID, ACCESSION, BIRTH, "OTHERMRN991", "ALIAS^ANNA",
           "DR^REFERRER", "PERFORMER^PAUL", "CURIE^MARIE", "HOSPITAL_AE", "SENDER_AE", "ST ELSEWHERE CLINIC",
           "12 HARBOUR ROAD", "1 CLINIC WAY", "SCANNER-SN-4471", "ROOM7-CT", "555-0199", "山田", "やまだ", "Jürgen", "MÜLLER")


def uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def _item(**tags: object) -> Dataset:
    ds = Dataset()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def hard_instance(study_uid: str, series_uid: str, sop_uid: str, number: int, referenced: str | None = None,
                  charset: str = "latin", size: int = 16) -> bytes:
    """One CT instance of the study with PHI everywhere a profile can miss it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "HOSPITAL_AE"
    meta.SendingApplicationEntityTitle = "SENDER_AE"
    meta.PrivateInformationCreatorUID = "1.2.3.4.5.6"
    meta.PrivateInformation = b"HARDCASE^HILDEGARD private information"
    ds = Dataset()
    ds.file_meta = meta
    if charset == "utf8":
        ds.SpecificCharacterSet = "ISO_IR 192"
        name = "MÜLLER^Jürgen"
    elif charset == "japanese":
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    else:
        ds.SpecificCharacterSet = "ISO_IR 100"
        name = NAME
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, study_uid + ".1"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, PATIENT_ID, BIRTH
    ds.PatientSex, ds.PatientAge, ds.PatientWeight, ds.PatientSize = "F", "063Y", "71", "1.68"
    ds.OtherPatientNames = "ALIAS^ANNA"
    ds.OtherPatientIDsSequence = Sequence([_item(PatientID="OTHERMRN991", TypeOfPatientID="TEXT")])
    ds.PatientAddress, ds.PatientTelephoneNumbers = "12 HARBOUR ROAD", "555-0199"
    ds.AccessionNumber, ds.StudyID = ACCESSION, "HSTUDY1"
    ds.ReferringPhysicianName, ds.PerformingPhysicianName = "DR^REFERRER", "PERFORMER^PAUL"
    ds.InstitutionName, ds.InstitutionAddress = "ST ELSEWHERE CLINIC", "1 CLINIC WAY"
    ds.StationName, ds.DeviceSerialNumber = "ROOM7-CT", "SCANNER-SN-4471"
    ds.Manufacturer, ds.Modality, ds.BurnedInAnnotation = "ACME", "CT", "NO"
    ds.StudyDate, ds.StudyTime = "20240229", "233000"
    ds.SeriesDate, ds.SeriesTime = "20240229", "235959"
    ds.InstanceCreationDate, ds.InstanceCreationTime = "20240301", "000102"
    ds.AcquisitionDateTime = "20240229235959.5"
    ds.ContentDate, ds.ContentTime = "20240229", "235958"
    ds.SeriesNumber, ds.InstanceNumber = 1 + (series_uid.endswith("2")), number
    # free text that names the patient
    ds.StudyDescription = f"CT THORAX {name} follow-up"
    ds.SeriesDescription = f"axial {name.split('^')[0]} {PATIENT_ID}"
    ds.ImageComments = f"patient {name} born {BIRTH}, acc {ACCESSION}"
    ds.AdditionalPatientHistory = "seen by CURIE^MARIE at ST ELSEWHERE CLINIC"
    # nested sequences, three deep, with names, ids, dates and UIDs
    text = _item(RelationshipType="CONTAINS", ValueType="TEXT", TextValue=f"report for {name} {PATIENT_ID}")
    person = _item(RelationshipType="HAS OBS CONTEXT", ValueType="PNAME", PersonName="CURIE^MARIE")
    when = _item(RelationshipType="CONTAINS", ValueType="DATETIME", DateTime="20240229235959")
    text.ContentSequence = Sequence([person, when])
    ds.ContentSequence = Sequence([text])
    request = _item(AccessionNumber=ACCESSION, RequestedProcedureID=f"RP{PATIENT_ID}", StudyInstanceUID=study_uid,
                    ScheduledProcedureStepDescription=f"CT for {name}")
    request.ReferencedStudySequence = Sequence([_item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
                                                      ReferencedSOPInstanceUID=study_uid)])
    ds.RequestAttributesSequence = Sequence([request])
    ds.ReferencedImageSequence = Sequence([_item(ReferencedSOPClassUID=CTImageStorage,
                                                 ReferencedSOPInstanceUID=referenced or sop_uid)])
    source = _item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=study_uid + ".77",
                   PatientID=PATIENT_ID, PatientName=name, InstitutionName="ST ELSEWHERE CLINIC")
    ds.SourceImageSequence = Sequence([source])
    ds.ReferencedPatientSequence = Sequence([_item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.1.1",
                                                   ReferencedSOPInstanceUID=uid())])
    # private tags: a creator, a name, a private sequence holding a name
    block = ds.private_block(0x0029, "HARD PRIVATE", create=True)
    block.add_new(0x01, "LO", name)
    block.add_new(0x02, "SQ", Sequence([_item(PatientName=name, PatientID=PATIENT_ID)]))
    block.add_new(0x03, "US", 7)
    # public elements a dictionary-driven profile can miss: unknown to the standard, and a known one stored as UN
    ds.add(DataElement(0x00089999, "UN", name.encode()))
    ds.add(DataElement(0x00101001 + 0, "UN", b"ALIAS^ANNA"))  # OtherPatientNames, encoded as UN
    ds.add(DataElement(0x60004000, "LT", f"overlay note {name}"))  # OverlayComments
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = (np.arange(size * size, dtype=np.int16) % 4096).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def hard_study(instances: int = 3, charset: str = "latin") -> dict[str, object]:
    """A study of ``instances`` files in two series, the later ones referencing the first; the patient's name in
    ``charset``: "latin" (ISO_IR 100), "utf8" (ISO_IR 192) or "japanese" (ISO 2022 IR 87)."""
    study = uid()
    series = [study + ".1", study + ".2"]
    sops = [uid() for _ in range(instances)]
    files = [hard_instance(study, series[min(i, 1)], sops[i], i + 1, referenced=sops[0], charset=charset)
             for i in range(instances)]
    return {"files": files, "study_uid": study, "sop_uids": sops}
