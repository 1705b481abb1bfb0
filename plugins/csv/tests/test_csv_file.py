"""CsvFile against real files on disk: BOM, quoting, Montage exports, streaming appends, bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from diana_core import DicomLevel, Dixel, load_services
from diana_core.errors import NotFound, ValidationError
from diana_csv import CsvFile

MONTAGE_EXPORT = (
    '"Accession Number","Organization","Exam Code","Exam Description","Patient MRN","Patient First Name",'
    '"Patient Last Name","Patient Sex","Patient Age","Ordered By","Exam Completed Date","Report Text"\r\n'
    '"R1001","HUP","CTABD","CT ABDOMEN, WITH CONTRAST","MRN1","Jane","Doe","F","45","Smith, John",'
    '"2019-01-02","FINDINGS:\r\nNormal ""liver"".\r\nIMPRESSION: none"\r\n'
    '"R1002","PAH","MRBR","MR BRAIN","MRN2","John","Roe","M","60","Who, Dr","2019-01-03","Ok"\r\n'
)


def write(tmp_path: Path, text: str, name: str = "w.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_bom_quoting_and_meta_columns(tmp_path: Path) -> None:
    fp = write(tmp_path, 'AccessionNumber,StudyDescription,_Status\n"A1","CT, CHEST ""LOW DOSE""",new\nA2,,\n',
               encoding="utf-8-sig")
    assert Path(fp).read_bytes().startswith(b"\xef\xbb\xbf")
    items = list(CsvFile(fp=fp))
    assert [d.tags.get("AccessionNumber") for d in items] == ["A1", "A2"]
    assert items[0].tags["StudyDescription"] == 'CT, CHEST "LOW DOSE"'
    assert items[0].meta == {"Status": "new"} and items[1].meta == {}
    assert all(d.level == DicomLevel.STUDIES for d in items)


def test_single_column_of_accession_numbers_with_or_without_header(tmp_path: Path) -> None:
    with_header = CsvFile(fp=write(tmp_path, "AccessionNumber\nA1\nA2\n\nA3\n", "h.csv"))
    headerless = CsvFile(fp=write(tmp_path, "12345\n12346\n", "n.csv"))
    assert [d.sid() for d in with_header.items(required=["AccessionNumber"])] == ["A1", "A2", "A3"]
    assert [d.sid() for d in headerless] == ["12345", "12346"]


def test_iteration_is_a_lazy_generator(tmp_path: Path) -> None:
    fp = write(tmp_path, "AccessionNumber\n" + "".join(f"A{i}\n" for i in range(1000)) + "A1000,extra,bad\n")
    stream = iter(CsvFile(fp=fp))
    assert next(stream).sid() == "A0"  # the bad last row is not read yet
    with pytest.raises(ValidationError, match="row 1002"):
        list(stream)


def test_montage_export_detected_and_read(tmp_path: Path) -> None:
    items = list(CsvFile(fp=write(tmp_path, MONTAGE_EXPORT, "montage.csv", "utf-8-sig")))
    assert [d.sid() for d in items] == ["R1001", "R1002"]
    first = items[0]
    assert first.tags["StudyDescription"] == "CT ABDOMEN, WITH CONTRAST"
    assert first.tags["PatientID"] == "MRN1" and first.meta["OrderCode"] == "CTABD"
    assert first.meta["PatientName"] == "DOE^JANE"
    assert 'Normal "liver".' in first.report and "IMPRESSION" in first.report
    # "AccessionNumber" required of a Montage export means its "Accession Number" column; rows count records
    broken = MONTAGE_EXPORT.replace('"R1002"', '""')
    with pytest.raises(ValidationError, match="row 3 .*Accession Number"):
        list(CsvFile(fp=write(tmp_path, broken, "m2.csv")).items(required=["AccessionNumber"]))


def test_missing_required_value_names_the_row(tmp_path: Path) -> None:
    fp = write(tmp_path, "AccessionNumber,PatientID\nA1,P1\n,P2\nA3,P3\n")
    with pytest.raises(ValidationError, match=r"row 3 .*'AccessionNumber'") as info:
        list(CsvFile(fp=fp, required=["AccessionNumber"]))
    assert "P2" not in str(info.value)
    no_column = write(tmp_path, "PatientID\nP1\n", "c.csv")
    with pytest.raises(ValidationError, match="row 1 \\(header\\).*AccessionNumber"):
        list(CsvFile(fp=no_column).items(required=["AccessionNumber"]))


def test_put_appends_streaming_header_once_and_reads_back(tmp_path: Path) -> None:
    fp = str(tmp_path / "sub" / "log.csv")
    log = CsvFile(fp=fp)
    d1 = Dixel(meta={"Status": "sent"}, tags={"AccessionNumber": "A1", "PatientID": "P1", "StudyInstanceUID": "1.2"})
    d2 = Dixel(meta={"Status": "sent"}, tags={"AccessionNumber": "A2", "PatientID": "P2", "StudyInstanceUID": "1.3"})
    assert log.put(d1, force_write=True) == "A1"
    first_text = Path(fp).read_text()
    assert first_text.count("AccessionNumber") == 1 and "A1" in first_text
    log.put(d2)
    assert log.get("A2").meta["Status"] == "sent"  # reads flush pending rows first
    log.close()
    again = CsvFile(fp=fp)  # a new writer appends below the existing header
    again.put(Dixel(tags={"AccessionNumber": "A3", "PatientID": "P3"}), force_write=True)
    text = Path(fp).read_text()
    assert text.count("AccessionNumber") == 1 and text.startswith(first_text)
    assert [d.sid() for d in again] == ["A1", "A2", "A3"]
    assert again.exists(d1) and again.exists(d1.oid()) and not again.exists("A9")
    assert again.get(d2).tags["PatientID"] == "P2"
    with pytest.raises(NotFound, match="log.csv") as info:
        again.get("A9")
    assert "A9" not in str(info.value)
    again.close()


def test_new_columns_error_or_chosen_fieldnames(tmp_path: Path) -> None:
    log = CsvFile(fp=str(tmp_path / "a.csv"), strict=True)
    log.put(Dixel(tags={"AccessionNumber": "A1"}))
    with pytest.raises(ValidationError, match="Modality.*fieldnames"):
        log.put(Dixel(tags={"AccessionNumber": "A2", "Modality": "CT"}))
    log.close()
    chosen = CsvFile(fp=str(tmp_path / "b.csv"), fieldnames=["AccessionNumber", "_Status"])
    chosen.put(Dixel(meta={"Status": "ok", "Other": 1}, tags={"AccessionNumber": "A1", "Modality": "CT"}))
    chosen.close()
    assert (tmp_path / "b.csv").read_text().splitlines() == ["AccessionNumber,_Status", "A1,ok"]


def test_find_by_tag_values(tmp_path: Path) -> None:
    fp = write(tmp_path, "AccessionNumber,Modality,_Site\nA1,CT,x\nA2,MR,x\nA3,CT,y\n")
    ep = CsvFile(fp=fp)
    assert [d.sid() for d in ep.find({"Modality": "CT"})] == ["A1", "A3"]
    assert [d.sid() for d in ep.find({"Modality": "CT", "Site": "y"})] == ["A3"]
    assert len(ep.find({"Modality": "*"})) == 3 and ep.find({"Modality": "US"}) == []
    assert CsvFile(fp=str(tmp_path / "none.csv")).find({"Modality": "CT"}) == []


def test_missing_file_is_not_found_and_service_file_builds_it(tmp_path: Path) -> None:
    services = load_services({"worklist": {"ctype": "CsvFile", "fp": str(tmp_path / "nope.csv"), "level": "series"}})
    ep = services["worklist"]
    assert isinstance(ep, CsvFile) and ep.level == DicomLevel.SERIES and ep.check() is True
    with pytest.raises(NotFound, match="worklist"):
        list(ep)
