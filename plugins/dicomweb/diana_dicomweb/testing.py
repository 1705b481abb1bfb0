"""Real Orthanc processes with the DICOMweb plugin (Debian package ``orthanc-dicomweb``) for tests and benchmarks.

``start_orthanc_dicomweb(tmpdir, name)`` starts one through ``diana_orthanc.testing.start_orthanc`` with the plugin
loaded and DICOMweb at ``/dicom-web/``. Fixtures (loaded by the repo's conftest): ``dicomweb_servers`` (session: two
servers, "source" and "dest"), ``dicomweb_source`` / ``dicomweb_dest`` (function: emptied before the test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diana_orthanc.testing import OrthancServer, OrthancStartError, orthanc_workdir, start_orthanc

PLUGIN_CANDIDATES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL_HINT = "Orthanc's DICOMweb plugin not found: apt-get install orthanc-dicomweb (or set $ORTHANC_DICOMWEB_PLUGIN)"
ROOT = "/dicom-web/"


def dicomweb_plugin() -> str:
    """Path of libOrthancDicomWeb.so, or OrthancStartError with the install hint."""
    env = os.environ.get("ORTHANC_DICOMWEB_PLUGIN")
    for cand in ([env] if env else PLUGIN_CANDIDATES):
        if os.path.isfile(cand):
            return cand
    raise OrthancStartError(INSTALL_HINT)


def start_orthanc_dicomweb(tmpdir: str | os.PathLike[str], name: str = "dicomweb", **kwargs: Any) -> OrthancServer:
    """One Orthanc serving DICOMweb at ``{server.url}/dicom-web`` (same basic auth as its REST API)."""
    extra = {"Plugins": [dicomweb_plugin()], "DicomWeb": {"Enable": True, "Root": ROOT},
             **kwargs.pop("extra_config", {})}
    return start_orthanc(tmpdir, name, name.upper()[:16], extra_config=extra, **kwargs)


def dicomweb_url(server: OrthancServer) -> str:
    return server.url + ROOT.rstrip("/")


def dicomweb_desc(server: OrthancServer, **extra: Any) -> dict[str, Any]:
    """A Diana service entry (ctype DicomWeb, basic auth) for this server."""
    return {"ctype": "DicomWeb", "url": dicomweb_url(server), "auth": "basic", "user": server.user,
            "password": server.password, **extra}


@pytest.fixture(scope="session")
def dicomweb_servers() -> Iterator[dict[str, OrthancServer]]:
    """Two Orthancs with DICOMweb for the whole session: "source" and "dest"."""
    with orthanc_workdir("diana-dicomweb-") as workdir:
        servers: dict[str, OrthancServer] = {}
        try:
            for name in ("source", "dest"):
                servers[name] = start_orthanc_dicomweb(Path(workdir), f"dw{name}")
            yield servers
        finally:
            for srv in servers.values():
                if srv.proc is not None and srv.proc.poll() is None:
                    srv.proc.terminate()
            for srv in servers.values():
                srv.stop()


@pytest.fixture
def dicomweb_source(dicomweb_servers: dict[str, OrthancServer]) -> OrthancServer:
    """The "source" DICOMweb Orthanc, emptied."""
    dicomweb_servers["source"].reset()
    return dicomweb_servers["source"]


@pytest.fixture
def dicomweb_dest(dicomweb_servers: dict[str, OrthancServer]) -> OrthancServer:
    """The "dest" DICOMweb Orthanc, emptied."""
    dicomweb_servers["dest"].reset()
    return dicomweb_servers["dest"]
