"""``verify:`` on DicomWeb against a real HTTPS DICOMweb server signed by a private CA (a TLS front before the
DICOMweb Orthanc, as in tests/e2e/test_tls_verify_e2e.py): the CA path works, the system store refuses it."""

from __future__ import annotations

import pytest

from diana_core import load_services
from diana_core.errors import EndpointUnavailable
from diana_dicomweb.testing import ROOT
from diana_orthanc.testing_tls import TlsFront, make_private_ca


def test_private_ca_path_is_honoured(dicomweb_source, tmp_path, monkeypatch):
    ca = make_private_ca(tmp_path / "ca")
    front = TlsFront(dicomweb_source.http_port, ca).start()
    try:
        monkeypatch.setenv("DW_PASSWORD", dicomweb_source.password)
        entry = {"ctype": "DicomWeb", "url": f"https://localhost:{front.port}{ROOT.rstrip('/')}", "auth": "basic",
                 "user": dicomweb_source.user, "password": "${DW_PASSWORD}", "retries": 0}
        services = load_services({"dw": {**entry, "verify": ca.ca_pem}, "system_cas": entry})
        assert services["dw"].check() is True
        assert list(services["dw"].find({"PatientID": "NOBODY"})) == []
        assert services["system_cas"].check() is False
        with pytest.raises(EndpointUnavailable, match="TLS verification failed") as info:
            list(services["system_cas"].find({"PatientID": "NOBODY"}))
        assert "NOBODY" not in str(info.value)
    finally:
        front.stop()
