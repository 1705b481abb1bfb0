"""DicomNode against real DICOM software that is not ours: dcmtk's dcmqrscp (query/retrieve PACS), dcmtk's
findscu/movescu/storescp (results compared with ours), and Orthanc's DICOM port (C-STORE, checked over REST)."""

from __future__ import annotations

import collections
import io
import threading
import zipfile
from pathlib import Path

import pydicom
import pytest
import requests
from pynetdicom import evt

from diana_core import Dixel, load_services
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import EndpointUnavailable, NotFound
from diana_dimse import AssociationRejected, DicomNode, DimseStatusError, RetrieveIncomplete
from diana_dimse.storage import FolderSink
from diana_dimse.testing import findscu_study_uids, free_port, run_dcmtk, start_storescp


@pytest.fixture(scope="module")
def node(dimse_pacs):
    n = load_services({"pacs": dimse_pacs.node_desc()})["pacs"]
    yield n
    n.close()


def sop_uids_of(paths) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


def study_files(lab, accession: str) -> list[Path]:
    return [p for p in lab.files if pydicom.dcmread(p, stop_before_pixels=True).AccessionNumber == accession]


def test_check_is_c_echo_and_a_wrong_called_ae_is_a_one_line_rejection(node, dimse_pacs):
    assert node.check() is True
    wrong = DicomNode(name="pacs", host="127.0.0.1", port=dimse_pacs.pacs.port, aet="NOTPACS", timeout=5)
    with pytest.raises(AssociationRejected) as err:
        wrong.check()
    text = str(err.value)
    assert "\n" not in text and "'NOTPACS'" in text and "'DIANA'" in text and "Called AE title not recognised" in text


def test_a_reject_the_requesting_thread_reads_late_is_still_a_rejection(dimse_pacs):
    """pynetdicom closes the socket as soon as an A-ASSOCIATE-RJ arrives; a requesting thread that looked only
    afterwards (a loaded CPU) got an abort, and `diana check` said "unavailable" instead of "rejected"."""
    closed: dict[int, threading.Event] = collections.defaultdict(threading.Event)

    def requesting_thread_late(event):  # held until the network thread has read the reject and closed the socket
        assert closed[id(event.assoc)].wait(5)

    def socket_closed(event):
        closed[id(event.assoc)].set()

    wrong = DicomNode(name="wrong", host="127.0.0.1", port=dimse_pacs.pacs.port, aet="NOTPACS", timeout=5)
    late = [(evt.EVT_REQUESTED, requesting_thread_late), (evt.EVT_CONN_CLOSE, socket_closed)]
    with pytest.raises(AssociationRejected, match="Called AE title not recognised"), \
            wrong.association("C-ECHO", ["1.2.840.10008.1.1"], handlers=late):
        pass
    assert len(closed) == 1 and all(e.is_set() for e in closed.values())  # one association, and it was late


def test_unreachable_node_is_unavailable_not_not_found(dimse_pacs):
    gone = DicomNode(name="gone", host="127.0.0.1", port=free_port(), aet="PACS", timeout=3)
    assert gone.check() is False
    with pytest.raises(EndpointUnavailable, match="cannot reach 127.0.0.1"):
        list(gone.find({"AccessionNumber": "ACC00000000"}))


def test_find_answers_match_findscu(node, dimse_pacs):
    ours = sorted(d.tags["StudyInstanceUID"] for d in node.find({}))
    theirs = sorted(findscu_study_uids(dimse_pacs.pacs.port, "PACS", {}))
    assert len(ours) == 2 and ours == theirs
    ours = [d.tags["StudyInstanceUID"] for d in node.find({"AccessionNumber": "ACC00000001"})]
    assert ours == findscu_study_uids(dimse_pacs.pacs.port, "PACS", {"AccessionNumber": "ACC00000001"})
    assert [d.tags["AccessionNumber"] for d in node.find({"PatientName": "TEST^PATIENT00*"})] \
        == ["ACC00000000", "ACC00000001"] or len(list(node.find({"PatientName": "TEST^PATIENT00*"}))) == 2


def test_find_at_every_level_streams_dixels(node):
    find = node.find({"PatientID": "PT000000"}, level="patients")
    assert not isinstance(find, list)  # a stream, answered as the node sends
    [patient] = list(find)
    assert patient.level == DicomLevel.PATIENTS and patient.tags["PatientName"] == "TEST^PATIENT000"
    [study] = node.find({"AccessionNumber": "ACC00000000"})
    series = list(node.find(study, level="series"))
    assert len(series) == 2 and all(s.level == DicomLevel.SERIES for s in series)
    instances = list(node.find(series[0], level="instances"))
    assert len(instances) == 3 and len({i.tags["SOPInstanceUID"] for i in instances}) == 3
    assert instances[0].oid() == orthanc_id(*(instances[0].tags[k] for k in
                                              ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")))
    assert node.exists(study) and not node.exists("1.2.3.4", level="studies")


def test_get_by_c_move_into_a_folder_a_zip_and_memory_matches_movescu(node, dimse_pacs, tmp_path):
    [study] = node.find({"AccessionNumber": "ACC00000001"})
    expected = sop_uids_of(study_files(dimse_pacs, "ACC00000001"))

    got = node.get(study, view="tags,file", dest=str(tmp_path / "folder"))
    assert got.meta["Instances"] == 6 and got.tags["AccessionNumber"] == "ACC00000001"
    assert sop_uids_of((tmp_path / "folder").iterdir()) == expected

    node.get(study.tags["StudyInstanceUID"], level="studies", view="file", dest=str(tmp_path / "study.zip"))
    with zipfile.ZipFile(tmp_path / "study.zip") as archive:
        assert {n.removesuffix(".dcm") for n in archive.namelist()} == expected
    assert not list(tmp_path.glob(".*.part"))

    # dcmtk's movescu moves the same study to dcmtk's storescp: the same instances arrive
    scp = start_storescp(tmp_path / "dcmtk", port=dimse_pacs.storescp_port)
    try:
        run_dcmtk("movescu", "-S", "-aet", "DCMTK", "-aec", "PACS", "-aem", "STORESCP", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", f"StudyInstanceUID={study.tags['StudyInstanceUID']}", "127.0.0.1", dimse_pacs.pacs.port)
    finally:
        scp.stop()
    assert sop_uids_of((tmp_path / "dcmtk").iterdir()) == expected

    one = next(iter(node.find(next(iter(node.find(study, level="series"))), level="instances")))
    inst = node.get(one, view="tags,file")  # one instance: into memory
    assert inst.level == DicomLevel.INSTANCES and inst.tags["SOPInstanceUID"] == one.tags["SOPInstanceUID"]
    assert pydicom.dcmread(io.BytesIO(inst.file)).SOPInstanceUID == one.tags["SOPInstanceUID"]


def test_get_by_c_get(dimse_pacs, tmp_path):
    getter = DicomNode(name="pacs-get", host="127.0.0.1", port=dimse_pacs.pacs.port, aet="PACS", retrieve_method="get")
    [study] = getter.find({"AccessionNumber": "ACC00000000"})
    getter.get(study, view="file", dest=str(tmp_path / "got"))
    assert sop_uids_of((tmp_path / "got").iterdir()) == sop_uids_of(study_files(dimse_pacs, "ACC00000000"))
    with pytest.raises(NotFound):
        getter.get("1.2.3.4", level="studies", view="file", dest=str(tmp_path / "none"))


def test_unknown_move_destination_is_a_status_error_with_its_code(node, dimse_pacs, tmp_path):
    [study] = node.find({"AccessionNumber": "ACC00000000"})
    stranger = DicomNode(name="pacs", host="127.0.0.1", port=dimse_pacs.pacs.port, aet="PACS",
                         receive_aet="NOBODY", receive_port=free_port(), timeout=10)
    try:
        with pytest.raises(DimseStatusError) as err:
            stranger.get(study, view="file", dest=str(tmp_path / "x"))
    finally:
        stranger.close()
    assert "\n" not in str(err.value) and "0xA801" in str(err.value) and "Move destination unknown" in str(err.value)


class RefusingSink(FolderSink):
    """Refuses every second instance, as a full disk would (our receiver answers 0xA700)."""

    tries = 0

    def _add(self, sop_uid, study_uid, data):
        self.tries += 1
        if self.tries % 2 == 0:
            raise OSError(28, "No space left on device")
        return super()._add(sop_uid, study_uid, data)


def test_failed_move_suboperations_are_counted(node, tmp_path):
    [study] = node.find({"AccessionNumber": "ACC00000000"})
    sink = RefusingSink(tmp_path / "half")
    with pytest.raises(RetrieveIncomplete) as err:
        node.retrieve(study.tags, DicomLevel.STUDIES, sink)
    assert err.value.failed == 3 and err.value.received == 3
    assert "3 sub-operation(s) failed" in str(err.value) and "\n" not in str(err.value)
    assert len(list((tmp_path / "half").iterdir())) == 3


def test_put_into_orthanc_dicom_port_keeps_each_files_transfer_syntax(clean_orthancs, dicom_testfiles, dimse_pacs,
                                                                      tmp_path):
    local = clean_orthancs.local
    # pynetdicom sends every file in its own syntax; dcmsend converts some of pydicom's odd test files
    orthanc = DicomNode(name="orthanc", host="127.0.0.1", port=local.dicom_port, aet=local.aet, engine="pynetdicom")
    files = [*dicom_testfiles, *map(str, dimse_pacs.files)]
    result = orthanc.put_many(files)
    assert result.done == len(files) and not result.failed
    session = requests.Session()
    session.auth = (local.user, local.password)
    assert len(session.get(f"{local.url}/instances").json()) == len(files)
    for path in dicom_testfiles:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        oid = orthanc_id(ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        ts = session.get(f"{local.url}/instances/{oid}/metadata/TransferSyntax").text
        assert ts == ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"), path  # sent as it was
    # a zip of a study goes member by member; single put returns the SOP Instance UID
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as archive:
        for p in dimse_pacs.files[:4]:
            archive.write(p, p.name)
    assert orthanc.put(Dixel(meta={"FileName": str(tmp_path / "s.zip")}, level="studies")).done == 4
    assert orthanc.put(str(dimse_pacs.files[0])) == str(pydicom.dcmread(dimse_pacs.files[0]).SOPInstanceUID)


def test_put_reports_unreadable_files_per_file(clean_orthancs, dimse_pacs, tmp_path):
    local = clean_orthancs.local
    (tmp_path / "notes.txt").write_text("not dicom")
    orthanc = DicomNode(name="orthanc", host="127.0.0.1", port=local.dicom_port, aet=local.aet)
    result = orthanc.put_many([str(tmp_path / "notes.txt"), str(dimse_pacs.files[0])])
    assert result.done == 1 and result.failed[0][0] == "notes.txt" and "not readable DICOM" in result.failed[0][1]


def _dataset_bytes(path: Path) -> bytes:
    from pynetdicom.dsutils import split_dataset

    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def test_files_are_sent_as_stored_byte_for_byte(tmp_path, dimse_pacs):
    """A file whose exact transfer syntax is accepted goes out as its bytes (never decoded and re-encoded by
    pydicom, which changes e.g. an RLE dose file's encapsulated items); a file whose meta disagrees with its
    dataset (rtplan: meta SOP class != dataset SOP class) is still sent right, from its dataset."""
    from pydicom.data import get_testdata_file

    from diana_dimse import DicomReceiver

    rle = Path(get_testdata_file("rtdose_rle.dcm"))
    rtplan = Path(get_testdata_file("rtplan.dcm"))
    ct = Path(dimse_pacs.files[0])
    receiver = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port()).start()
    try:
        # pynetdicom's send-as-stored path (dcmsend refuses rtdose_rle.dcm, whose meta disagrees with its dataset)
        node = DicomNode(name="in", host="127.0.0.1", port=receiver.port, aet="DIANA", engine="pynetdicom")
        result = node.put_many([str(rle), str(rtplan), str(ct)])
        assert result.done == 3 and not result.failed
    finally:
        receiver.stop()
    received = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
                for p in (tmp_path / "in").rglob("*.dcm")}
    for original in (rle, ct):
        uid = str(pydicom.dcmread(original, stop_before_pixels=True).SOPInstanceUID)
        assert _dataset_bytes(received[uid]) == _dataset_bytes(original), original.name
    plan = pydicom.dcmread(rtplan, stop_before_pixels=True)
    assert str(pydicom.dcmread(received[str(plan.SOPInstanceUID)]).SOPClassUID) == str(plan.SOPClassUID)


def _fresh_copies(files: list[Path], folder: Path, times: int) -> list[Path]:
    """The files ``times`` over with fresh SOP instance UIDs."""
    folder.mkdir()
    copies = []
    for n in range(times):
        for i, p in enumerate(files):
            ds = pydicom.dcmread(p)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
            copies.append(folder / f"{n}-{i}.dcm")
            ds.save_as(copies[-1], enforce_file_format=True)
    return copies


@pytest.mark.parametrize("limit", [10, 1])
def test_put_many_with_workers_uses_parallel_associations_within_what_the_node_allows(tmp_path, dimse_pacs, limit):
    """workers=4: four associations at once when the node allows them; against a node that allows one, the
    refused ones ("local limit exceeded", transient) hand their share back (or wait, if last) and every
    instance still arrives exactly once, never over more associations than allowed."""
    from diana_dimse import DicomReceiver

    files = [Path(p) for p in dimse_pacs.files]
    paths = [*files, *_fresh_copies(files, tmp_path / "src", 3)]
    sent = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]
    receiver = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port(), max_associations=limit).start()
    progress: list[int] = []
    try:
        node = DicomNode(name="in", host="127.0.0.1", port=receiver.port, aet="DIANA", timeout=10)
        result = node.put_many(list(map(str, paths)), workers=4, progress=lambda done, total: progress.append(done))
        peak = receiver.peak_associations
    finally:
        receiver.stop()
    assert result.done == len(sent) and not result.failed
    arrived = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in (tmp_path / "in").rglob("*.dcm")]
    assert sorted(arrived) == sorted(sent)  # each once
    assert (peak >= 2) if limit > 1 else (peak == 1)
    assert progress[-1] == len(sent) and progress == sorted(progress)


@pytest.mark.parametrize("engine", ["pynetdicom", "dcmtk"])
def test_an_instance_that_gets_no_answer_is_sent_again_on_a_new_association(dimse_pacs, engine):
    """A store SCP that answers the first C-STORE only after the sender's timeout (a PACS hiccup): the sender
    aborts that association and sends the instance once more on a new one; nothing fails, nothing is lost.
    dcmsend goes on sending after a timeout and may pair a late answer with a later request, so the dcmtk engine
    also sends again everything after the unanswered instance on that association."""
    import threading
    import time

    from diana_dimse.scp import StoreServer

    calls: list[str] = []
    lock = threading.Lock()

    def slow_once(sop_uid: str, keys: dict, data: bytes) -> None:
        with lock:
            calls.append(sop_uid)
            first = len(calls) == 1
        if first:
            time.sleep(4)

    server = StoreServer("SLOW", 0, slow_once, need_keys=False).start()
    try:
        node = DicomNode(name="slow", host="127.0.0.1", port=server.port, aet="SLOW", timeout=1.5, engine=engine)
        files = [str(p) for p in dimse_pacs.files[:4]]
        result = node.put_many(files)
    finally:
        server.stop()
    assert result.done == 4 and not result.failed
    assert sorted(set(calls)) == sorted(sop_uids_of(files))  # every instance counted done arrived
    assert calls.count(calls[0]) == 2  # the unanswered one twice
    assert len(calls) == 5 if engine == "pynetdicom" else 5 <= len(calls) <= 8
