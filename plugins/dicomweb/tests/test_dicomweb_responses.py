"""An answer that is not DICOMweb is an error, never a success nor an empty result (#24, defect 4); what a server
lists as stored is looked up before it counts.

The HTML answers come from a local ``http.server`` standing for an SSO or reverse proxy in front of an archive (a
200 text/html page for every request, or a 302 to a login page). The refusals come from a real Orthanc with its
DICOMweb plugin and a Lua filter: Orthanc 1.10 lists the instances its filter refused as stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from diana_core import Collector, Dixel
from diana_core.services import build_endpoint
from diana_dicomweb import DicomWeb, StowError, UnexpectedResponse
from diana_dicomweb.testing import dicomweb_desc, start_orthanc_dicomweb
from diana_dicomweb.verify import NOT_FOUND
from diana_orthanc.testdata import iter_ct_bytes, write_small_ct
from diana_orthanc.testing import orthanc_workdir

LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in - Hospital SSO</title></head><body>form</body></html>"


class SsoProxy(BaseHTTPRequestHandler):
    """Answers every request with a 200 HTML login page, or (``redirect``) a 302 to /login which is that page."""

    redirect = False
    posts = 0

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.redirect and not self.path.startswith("/login"):
            self.send_response(302)
            self.send_header("Location", "/login?next=/dicom-web")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(LOGIN_PAGE)))
        self.end_headers()
        self.wfile.write(LOGIN_PAGE)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        type(self).posts += 1
        self._answer()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["html-200", "302-to-login"])
def sso(request) -> Iterator[str]:
    handler = type("Handler", (SsoProxy,), {"redirect": request.param, "posts": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    finally:
        server.shutdown()
        server.server_close()


def test_an_html_answer_is_an_error_on_stow_qido_and_wado(sso, tmp_path):
    dw = DicomWeb(name="behind-sso", url=sso, retries=0)
    sent = list(iter_ct_bytes(20, run="dw-sso"))
    with pytest.raises(UnexpectedResponse) as put_error:
        dw.put_many(sent)
    message = str(put_error.value)
    assert "\n" not in message and "store 20 instances" in message
    assert ("HTTP 200 text/html" in message and "body starting '<!DOCTYPE html> <html><head><title>Sign in" in message) \
        or ("HTTP 302" in message and "redirect" in message), message
    with pytest.raises(UnexpectedResponse, match="store 1 instances"):
        dw.put(Dixel(file=sent[0], level="instances"))
    with pytest.raises(UnexpectedResponse, match=r"find studies: the server answered HTTP 200 text/html"):
        list(dw.find({"AccessionNumber": "ACC1"}))  # an empty result would say "no such study"
    with pytest.raises(UnexpectedResponse, match="retrieve study"):
        dw.get("1.2.3.4", view="file", dest=str(tmp_path / "study.zip"))
    assert dw.check() is False
    if "302" in message:
        return  # the CLI path below once is enough

    folder = tmp_path / "in"
    folder.mkdir()
    for i, data in enumerate(sent):
        (folder / f"{i}.dcm").write_bytes(data)
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"web": {"ctype": "DicomWeb", "url": sso, "retries": 0}}))
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(services), "put", "web", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "put 20" not in proc.stdout + proc.stderr
    assert "text/html" in proc.stderr or "redirect" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def refusing():
    """A real Orthanc + DICOMweb whose Lua filter refuses every instance numbered 2."""
    with orthanc_workdir("diana-dw-refusing-") as workdir:
        lua = Path(workdir) / "filter.lua"
        lua.write_text('function ReceivedInstanceFilter(dicom, origin, info)\n'
                       '  return tonumber(dicom.InstanceNumber) ~= 2\nend\n')
        server = start_orthanc_dicomweb(workdir, "refusing", extra_config={"LuaScripts": [str(lua)]})
        try:
            yield server
        finally:
            server.stop()


def endpoint(server, **extra) -> DicomWeb:
    desc = dicomweb_desc(server, **extra)
    return build_endpoint(desc.pop("ctype"), desc, service_name="refusing")


def test_instances_listed_as_stored_but_refused_are_counted_as_failed(refusing):
    refusing.reset()
    sent = list(iter_ct_bytes(4, run="dw-refused"))  # instance numbers 1..4: the second is refused
    result = endpoint(refusing).put_many(sent)
    assert result.done == 3 and [reason for _, reason in result.failed] == [NOT_FOUND]
    assert endpoint(refusing, verify_stored=False).put_many(sent[1:2]).done == 1  # what the server's answer says
    with pytest.raises(StowError, match="stored 0 of 1 instances.*QIDO does not find it"):
        endpoint(refusing).put(Dixel(file=sent[1], level="instances"))
    assert len(list(endpoint(refusing).find({}, level="instances"))) == 3


def test_collect_into_a_refusing_archive_fails_the_study_with_the_counts(refusing, tmp_path):
    refusing.reset()
    for i in range(3):
        write_small_ct(tmp_path / "pacs" / f"{i}.dcm", "DWREFUSED", i + 1, patient_id="DWR1")
    from diana_dcmdir import DcmDir

    result = Collector(retries=0).run("refused", ["DWREFUSED"], DcmDir(path=str(tmp_path / "pacs")), None,
                                      endpoint(refusing), job_dir=tmp_path / "job")
    [(key, reason)] = result.failed.items()
    assert key == "DWREFUSED" and "stored 2 of 3" in reason and result.done == 0 and result.unverified == 0
