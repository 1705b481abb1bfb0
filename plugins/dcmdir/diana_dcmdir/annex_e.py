"""The de-identification table of the one engine: DICOM PS3.15 Annex E, Table E.1-1, basic profile, with the
options a ``Profile`` names (default: Retain Longitudinal Temporal Information with Modified Dates and Retain
Patient Characteristics) and its YAML overrides.

The standard's table (655 attributes, DICOM 2026c) comes from the ``dicom-anonymizer`` package (Kitware), which
ships it as data; the lists below only add to it (attributes we remove although the table would keep or blank
them) and set the options. Element classes are also handled by VR in ``anonymize.py``: every UI outside the DICOM
root is remapped (U), every DA/DT/TM is shifted (modified dates option), every PN except PatientName is removed,
private tags are removed.
"""

from __future__ import annotations

import functools

from diana_core.deid_profile import Profile
from diana_core.errors import ConfigError

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

# Retain Device Identity option
KEEP_DEVICE = """
DeviceSerialNumber StationName DetectorID GantryID GeneratorID CassetteID PlateID DeviceUID DeviceLabel
DeviceDescription ModifyingDeviceID SourceSerialNumber PerformedStationName PerformedStationAETitle
ScheduledStationName ScheduledStationAETitle XRayDetectorID XRayDetectorLabel
"""

# Retain Institution Identity option
KEEP_INSTITUTION = """
InstitutionName InstitutionAddress InstitutionCodeSequence InstitutionalDepartmentName
InstitutionalDepartmentTypeCodeSequence
"""

# Clean Descriptors option: kept, with the patient's identifying values scrubbed out of the text ("C")
CLEAN_DESCRIPTORS = """
StudyDescription SeriesDescription ProtocolName ImageComments AcquisitionComments PerformedProcedureStepDescription
RequestedProcedureDescription ScheduledProcedureStepDescription DerivationDescription StudyComments
AcquisitionDeviceProcessingDescription ContrastBolusAgent ReasonForStudy ReasonForTheRequestedProcedure
ImagePresentationComments FrameComments
"""
CLEAN_STRUCTURED = "ContentSequence TextValue"
CLEAN_GRAPHICS = "GraphicAnnotationSequence UnformattedTextValue"


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
def _basic() -> dict[int, str]:
    table = standard_table()
    for words, action in ((REMOVE, "X"), (EMPTY, "Z"), (DUMMY, "D")):
        table.update(dict.fromkeys(_tags(words), action))
    return table


def override_tag(name: str) -> int:
    """A keyword or "(gggg,eeee)" / "ggggeeee" of a profile override -> tag (ConfigError when unknown)."""
    from pydicom.datadict import tag_for_keyword

    text = name.strip()
    tag = tag_for_keyword(text)
    if tag is not None:
        return int(tag)
    digits = text.strip("()").replace(",", "").replace(" ", "")
    try:
        if len(digits) == 8:
            return int(digits, 16)
    except ValueError:
        pass
    raise ConfigError(f"profile override {text!r} is neither a DICOM keyword nor a (gggg,eeee) tag")


@functools.cache
def actions(profile: Profile | None = None) -> dict[int, str]:
    """Tag (int) -> action: "X" remove, "Z" empty, "D" dummy, "U" remap UIDs, "K" keep, "M" set from the
    replacement map, "C" clean (scrub the patient's identifiers from text, walk sequences), "R" replace (override).
    The standard's table and our additions, then the profile's options, the map (M), then the overrides."""
    profile = profile or Profile()
    table = dict(_basic())
    # retain-uids: Pseudonymizer.uid/remap_uid give the original UIDs back, so "U" sequences are still walked
    option_sets = (("retain-patient-characteristics", KEEP_CHARACTERISTICS, "K"),
                   ("retain-device-identity", KEEP_DEVICE, "K"),
                   ("retain-institution-identity", KEEP_INSTITUTION, "K"),
                   ("clean-descriptors", CLEAN_DESCRIPTORS, "C"),
                   ("clean-structured-content", CLEAN_STRUCTURED, "C"),
                   ("clean-graphics", CLEAN_GRAPHICS, "C"))
    for option, words, action in option_sets:
        if profile.has(option):
            table.update(dict.fromkeys(_tags(words), action))
    table.update(dict.fromkeys(_tags(FROM_MAP), "M"))
    table.update(dict.fromkeys((override_tag(n) for n in profile.keep), "K"))
    table.update(dict.fromkeys((override_tag(n) for n in profile.remove), "X"))
    table.update(dict.fromkeys((override_tag(n) for n, _ in profile.replace), "R"))
    return table


def replacements(profile: Profile) -> dict[int, str]:
    """Tag -> value of the profile's ``replace`` overrides."""
    return {override_tag(n): v for n, v in profile.replace}


def unknown_keywords() -> list[str]:
    """Keywords in the table that pydicom does not know (a typo guard for tests)."""
    from pydicom.datadict import tag_for_keyword

    words = " ".join((REMOVE, EMPTY, DUMMY, KEEP_CHARACTERISTICS, FROM_MAP, KEEP_DEVICE, KEEP_INSTITUTION,
                      CLEAN_DESCRIPTORS, CLEAN_STRUCTURED, CLEAN_GRAPHICS)).split()
    return [w for w in words if tag_for_keyword(w) is None]
