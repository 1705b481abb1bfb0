"""``verify:`` is a bool or a CA bundle path, honoured against real HTTPS servers whose certificate a private CA signed.

The Orthanc is the real session Orthanc behind a TLS front (its own SslEnabled crashes in 1.10.1 with OpenSSL 3, see
``diana_orthanc.testing_tls``); Montage is the documented fake (``diana_montage.testing``) on a real TLS socket. The
system CA store trusts neither certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from diana_core import load_services
from diana_core.errors import ConfigError, EndpointUnavailable
from diana_montage.testing import FakeMontage
from diana_orthanc.testing import OrthancServer
from diana_orthanc.testing_tls import PrivateCA, TlsFront, make_private_ca


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def https_orthanc(private_ca: PrivateCA, orthanc_local: OrthancServer) -> Iterator[tuple[OrthancServer, TlsFront]]:
    front = TlsFront(orthanc_local.http_port, private_ca).start()
    yield orthanc_local, front
    front.stop()


def write_services(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.yml"
    path.write_text(text)
    return path


def test_orthanc_with_the_private_ca_path(https_orthanc: tuple[OrthancServer, TlsFront], private_ca: PrivateCA,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, front = https_orthanc
    monkeypatch.setenv("PACS_PASSWORD", server.password)
    entry = f"""
  ctype: Orthanc
  protocol: https
  port: {front.port}
  user: {server.user}
  password: "${{PACS_PASSWORD}}"
"""
    services = load_services(write_services(tmp_path, f"""
pacs:{entry}  host: localhost
  verify: {private_ca.ca_pem}
system_cas:{entry}  host: localhost
unverified:{entry}  host: 127.0.0.1
  verify: "false"
"""))
    pacs = services["pacs"]
    assert pacs.verify == private_ca.ca_pem
    assert pacs.check() is True
    assert pacs.gateway.system()["DicomAet"] == server.aet
    # the default (system CAs) does not know the private CA: refused, and check() says unavailable
    failures = front.handshake_failures
    assert services["system_cas"].verify is True
    assert services["system_cas"].check() is False
    with pytest.raises(EndpointUnavailable, match="SSLError"):
        services["system_cas"].gateway.system()
    assert front.handshake_failures > failures
    # the string "false" means off, as a YAML false does (it used to become True)
    assert services["unverified"].verify is False
    assert services["unverified"].check() is True


def test_proxied_dicom_passes_verify_to_its_proxy(https_orthanc: tuple[OrthancServer, TlsFront],
                                                  private_ca: PrivateCA) -> None:
    server, front = https_orthanc
    desc = server.service_desc(protocol="https", host="localhost", port=front.port, verify=private_ca.ca_pem)
    proxied = load_services({"pacs": {"ctype": "ProxiedDicom", "proxy_domain": "remote", "proxy_desc": desc}})["pacs"]
    assert proxied.proxy.verify == private_ca.ca_pem
    assert proxied.proxy.gateway.system()["DicomAet"] == server.aet
    assert proxied.check() is True


def test_montage_with_the_private_ca_path(private_ca: PrivateCA) -> None:
    fake = FakeMontage(certfile=private_ca.cert_pem, keyfile=private_ca.key_pem).start()
    try:
        desc = {**fake.service_desc(), "host": "localhost"}
        trusted = load_services({"m": {**desc, "verify": private_ca.ca_pem}})["m"]
        assert trusted.check() is True and fake.requests
        assert len(list(trusted.find({"q": "normal"}))) == 25
        default = load_services({"m": desc})["m"]
        assert default.check() is False
        with pytest.raises(EndpointUnavailable, match="TLS certificate not trusted"):
            default.gateway.get("index/")
    finally:
        fake.stop()


@pytest.mark.parametrize("ctype", ["Orthanc", "Montage", "ProxiedDicom"])
def test_other_strings_are_a_clear_error(ctype: str, tmp_path: Path) -> None:
    desc: dict = {"ctype": ctype, "verify": str(tmp_path / "missing-ca.pem")}
    if ctype == "ProxiedDicom":
        desc = {"ctype": ctype, "proxy_domain": "remote", "proxy_desc": {"ctype": "Orthanc", "verify": "flase"}}
    with pytest.raises(ConfigError, match=r"service 'x[^']*' .*verify: '.*(missing-ca\.pem|flase)' is neither "
                                          r"true/false nor an existing CA bundle file"):
        proxied = load_services({"x": desc})["x"]
        proxied.proxy  # noqa: B018 - the proxy is built on first use


def test_splunk_verify_text_is_not_truthy(private_ca: PrivateCA) -> None:
    services = load_services({"off": {"ctype": "Splunk", "verify": "false"},
                              "ca": {"ctype": "Splunk", "verify": private_ca.ca_pem}})
    assert services["off"].verify is False and services["ca"].verify == private_ca.ca_pem
