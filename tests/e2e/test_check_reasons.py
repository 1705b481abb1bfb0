"""``diana check`` says why a service is unavailable: connection refused, DNS, TLS, missing folder, bad credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from diana_core.cli import cli
from diana_core.ports import Diagnosing
from diana_orthanc.testing import OrthancServer, free_port
from diana_orthanc.testing_tls import PrivateCA, TlsFront, make_private_ca


@pytest.fixture(scope="module")
def tls_front(orthanc_local: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsFront,
                                                                                                      PrivateCA]]:
    ca = make_private_ca(tmp_path_factory.mktemp("ca"))
    front = TlsFront(orthanc_local.http_port, ca).start()
    yield front, ca
    front.stop()


def test_check_names_the_reason_per_service(tmp_path: Path, orthanc_local: OrthancServer,
                                            tls_front: tuple[TlsFront, PrivateCA]) -> None:
    front, ca = tls_front
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    desc = orthanc_local.service_desc()
    services = {
        "good": desc,
        "refused": {**desc, "port": free_port()},
        "dns": {**desc, "host": "pacs.does-not-exist.invalid"},
        "tls": {**desc, "protocol": "https", "host": "localhost", "port": front.port},
        "tls_ok": {**desc, "protocol": "https", "host": "localhost", "port": front.port, "verify": ca.ca_pem},
        "password": {**desc, "password": "wrong"},
        "missing_folder": {"ctype": "DcmDir", "path": str(tmp_path / "nope")},
        "file_not_folder": {"ctype": "DcmDir", "path": str(a_file)},
        "folder": {"ctype": "DcmDir", "path": str(tmp_path)},
        "worklist_missing": {"ctype": "CsvFile", "fp": str(tmp_path / "nowhere" / "w.csv")},
    }
    path = tmp_path / "services.yml"
    path.write_text(yaml.safe_dump(services))
    out = CliRunner().invoke(cli, ["--json", "-s", str(path), "check"])
    assert out.exit_code == 1, out.output
    results = json.loads(out.stdout)
    assert results["good"] == "ok" and results["tls_ok"] == "ok" and results["folder"] == "ok"
    assert results["refused"] == "unavailable: connection refused (is the server running on that port?)"
    assert results["dns"] == "unavailable: DNS lookup of pacs.does-not-exist.invalid failed"
    assert results["tls"].startswith("unavailable: TLS certificate not trusted")
    assert "verify: /path/to/ca.pem" in results["tls"]
    assert results["password"].startswith("unavailable: credentials refused") and "wrong" not in results["password"]
    assert results["missing_folder"] == f"unavailable: folder {str(tmp_path / 'nope')!r} does not exist"
    assert results["file_not_folder"] == f"unavailable: {str(a_file)!r} is a file, not a folder"
    assert results["worklist_missing"].startswith("unavailable: ") and "does not exist" in results["worklist_missing"]


def test_every_first_party_endpoint_can_say_why() -> None:
    from diana_core.plugins import get_plugin_manager

    endpoints = get_plugin_manager().load_all().endpoints
    for ctype in ("Orthanc", "ProxiedDicom", "DcmDir", "CsvFile", "Montage", "Redis"):
        assert issubclass(endpoints[ctype], Diagnosing), ctype
