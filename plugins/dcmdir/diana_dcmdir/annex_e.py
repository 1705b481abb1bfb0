"""The de-identification table DcmDir applies: DICOM PS3.15 Annex E, Table E.1-1, basic profile with the
Retain Longitudinal Temporal Information with Modified Dates and Retain Patient Characteristics options.

The standard's table (655 attributes, DICOM 2026c) comes from the ``dicom-anonymizer`` package (Kitware), which
ships it as data; the lists below only add to it (attributes we remove although the table would keep or blank
them) and set the options. Element classes are also handled by VR in ``anonymize.py``: every UI outside the DICOM
root is remapped (U), every DA/DT/TM is shifted (modified dates option), every PN except PatientName is removed,
private tags are removed.
"""

from __future__ import annotations

import functools

# X: remove
REMOVE = """
AcquisitionComments AcquisitionContextSequence AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription
ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID AdmittingDiagnosesCodeSequence
AdmittingDiagnosesDescription Allergies Arbitrary AuthorObserverSequence BranchOfService CassetteID
CommentsOnThePerformedProcedureStep ConfidentialityConstraintOnPatientDataDescription
ContentCreatorIdentificationCodeSequence ContentSequence ContributionDescription CountryOfResidence
CurrentPatientLocation CustodialOrganizationSequence DataSetTrailingPadding DerivationDescription DetectorID
DeviceSerialNumber DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress DistributionName
FillerOrderNumberImagingServiceRequest FrameComments GantryID GeneratorID HumanPerformerName
HumanPerformerOrganization IconImageSequence IdentifyingComments ImageComments ImagePresentationComments
ImagingServiceRequestComments Impressions InstitutionAddress InstitutionalDepartmentName InstitutionCodeSequence
InstitutionName InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer
InterpretationRecorder InterpretationText InterpretationTranscriber IssuerOfAdmissionID IssuerOfPatientID
IssuerOfPatientIDQualifiersSequence IssuerOfServiceEpisodeID LastMenstrualDate MedicalAlerts MedicalRecordLocator
MilitaryRank ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID NamesOfIntendedRecipientsOfResults
Occupation OperatorIdentificationSequence OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation
OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence OtherPatientNames ParticipantSequence
PatientAddress PatientBirthName PatientBirthTime PatientComments PatientInsurancePlanCodeSequence
PatientMotherBirthName PatientPrimaryLanguageCodeSequence PatientPrimaryLanguageModifierCodeSequence
PatientReligiousPreference PatientState PatientTelecomInformation PatientTelephoneNumbers
PatientTransportArrangements PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepID
PerformingPhysicianIdentificationSequence PersonAddress PersonTelephoneNumbers
PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
PlacerOrderNumberImagingServiceRequest PlateID PreMedication ProtocolName ReasonForStudy
ReasonForTheRequestedProcedure ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence
ReferencedPatientPhotoSequence ReferencedPatientSequence ReferencedSOPInstanceMACSequence ReferringPhysicianAddress
ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers RegionOfResidence
RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription
RequestedProcedureID RequestedProcedureLocation RequestingService ResponsibleOrganization ResultsComments
ResultsDistributionListSequence ResultsIDIssuer ScheduledHumanPerformersSequence
ScheduledPatientInstitutionResidence ScheduledPerformingPhysicianIdentificationSequence
ScheduledProcedureStepDescription ScheduledProcedureStepID ScheduledProcedureStepLocation SeriesDescription
ServiceEpisodeDescription ServiceEpisodeID SpecialNeeds StationName StudyComments StudyDescription StudyIDIssuer
TextComments TextString TopicAuthor TopicKeywords TopicSubject TopicTitle VerifyingOrganization VisitComments
PersonIdentificationCodeSequence GraphicAnnotationSequence VerifyingObserverIdentificationCodeSequence
StructureSetName StructureSetDescription ROIDescription ROIGenerationDescription RTPlanDescription
"""

# D: replace with a dummy value (type 1 attributes that must keep a value)
DUMMY = """
StructureSetLabel
"""
DUMMY_VALUE = "ANONYMIZED"

# Z: zero length (type 2 attributes that must stay present)
EMPTY = """
StudyID ReferringPhysicianName ContentCreatorName VerifyingObserverName ContrastBolusAgent
"""

# Retain Patient Characteristics option: kept although the basic profile removes them
KEEP_CHARACTERISTICS = """
PatientAge PatientSex PatientSize PatientWeight EthnicGroup SmokingStatus PregnancyStatus PatientSexNeutered
PatientSpeciesDescription PatientBreedDescription
"""

# Set from Pseudonymizer.replacement_map (D), so every backend produces the same values
FROM_MAP = """
PatientID PatientName PatientBirthDate AccessionNumber StudyInstanceUID SeriesInstanceUID SOPInstanceUID
StudyDate StudyTime
"""

# DeidentificationMethod is LO (64 chars a value), so one value per profile part
METHOD = ("DIANA PS3.15 E.1-1 basic profile", "retain longitudinal modified dates", "retain patient characteristics")

# CID 7050 De-identification Method codes (coding scheme DCM)
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113106", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)


def _tags(words: str) -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    tags = {tag_for_keyword(w) for w in words.split()}
    return frozenset(int(t) for t in tags if t is not None)


# the standard's composite actions, resolved the strict way (remove when removal is allowed), except X/Z/U*:
# references between images stay useful once their UIDs are remapped
STANDARD_VERSION = "dicomfields_2026c"
_CATEGORY_ACTION = {
    "X_TAGS": "X", "X_Z_TAGS": "X", "X_D_TAGS": "X", "X_Z_D_TAGS": "X",
    "X_Z_U_STAR_TAGS": "U",  # referenced image/SOP sequences: kept, every UID inside remapped
    "Z_TAGS": "Z", "Z_D_TAGS": "Z", "D_TAGS": "D", "U_TAGS": "U",
}


def standard_table() -> dict[int, str]:
    """Tag (int) -> action from PS3.15 Table E.1-1 as shipped by dicom-anonymizer."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    db = dicom_anonymization_database_selector(STANDARD_VERSION)
    table: dict[int, str] = {}
    for category, action in _CATEGORY_ACTION.items():
        for entry in db[category]:
            if len(entry) != 2:
                continue  # masked repeating groups (curves 50xx, overlay data/comments 60xx): removed by the walk
            group, element = entry
            table.setdefault((group << 16) | element, action)
    return table


@functools.cache
def actions() -> dict[int, str]:
    """Tag (int) -> action: "X" remove, "Z" empty, "D" dummy, "U" remap UIDs, "K" keep, "M" set from the
    replacement map. The standard's table first, then our additions, then the options (K) and the map (M)."""
    table = standard_table()
    for words, action in ((REMOVE, "X"), (EMPTY, "Z"), (DUMMY, "D"), (KEEP_CHARACTERISTICS, "K"), (FROM_MAP, "M")):
        table.update(dict.fromkeys(_tags(words), action))
    return table


def unknown_keywords() -> list[str]:
    """Keywords in the table that pydicom does not know (a typo guard for tests)."""
    from pydicom.datadict import tag_for_keyword

    words = " ".join((REMOVE, EMPTY, DUMMY, KEEP_CHARACTERISTICS, FROM_MAP)).split()
    return [w for w in words if tag_for_keyword(w) is None]
