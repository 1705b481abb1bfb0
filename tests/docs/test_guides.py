"""Docs that cannot drift: every guide on the site runs as written in CI (shell and Python blocks, outputs checked)."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

import pytest

from tests.docs.guides import Block, blocks, check_output, run_page

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = sorted((DOCS / "guides").glob("*.md")) + sorted((DOCS / "operations").glob("*.md")) + [
    DOCS / "writing-a-plugin.md"]  # the conformance kit on a plugin, as a third party runs it
_NEEDS = re.compile(r"<!--\s*docs-test:\s*needs=([\w,-]+)\s*-->")


def _env(tmp_path: Path, request: pytest.FixtureRequest, page: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIANA_", "XDG_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    plugins = ["dcmdir", "csv", "mock"]  # a guide loads only the plugins it needs: prove it
    needs = _NEEDS.search(page.read_text())
    for service in (needs.group(1).split(",") if needs else []):
        if service == "orthanc":  # the real Orthanc the suite starts, reset for this guide
            research = request.getfixturevalue("clean_orthancs").local
            env.update(RESEARCH_PORT=str(research.http_port), RESEARCH_USER=research.user,
                       RESEARCH_PASSWORD=research.password)
            plugins.append("orthanc")
        elif service == "orthanc-pair":  # a "hospital PACS" and the proxy Orthanc that reaches it as "remote"
            pair = request.getfixturevalue("clean_orthancs")
            env.update(PACS_PORT=str(pair.remote.http_port), PROXY_PORT=str(pair.local.http_port),
                       ORTHANC_USER=pair.local.user, ORTHANC_PASSWORD=pair.local.password)
            plugins += ["orthanc", "proxied"]
        elif service == "redis":  # the suite's redis-server, emptied: the broker and the shared job state
            env["REDIS_PORT"] = str(request.getfixturevalue("redis_clean").port)
            plugins += ["celery", "redis"]
        elif service == "pixels":  # the OCR plugin (Tesseract is a system package the suite installs)
            plugins.append("pixels")
        elif service == "port":  # a free TCP port for a server the guide starts itself
            for name in ("RECEIVER_PORT", "STATUS_PORT"):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    env[name] = str(sock.getsockname()[1])
            plugins.append("dimse")
        else:
            raise AssertionError(f"{page.name}: unknown docs-test service {service!r}")
    env["DIANA_PLUGINS"] = ",".join(plugins)
    return env


@pytest.mark.parametrize("page", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_runs_as_written(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    work = tmp_path / "work"
    work.mkdir()
    assert run_page(page, work, _env(tmp_path, request, page)) >= 3, f"{page.name}: too few runnable blocks"


def test_the_runner_fails_a_guide_whose_output_changed() -> None:
    page = "```bash\necho 'put 14, failed 1'\n```\n\n<!-- docs-test: exit=0 -->\n\n```text\nput 15\n```\n"
    (block,) = blocks(page)
    assert block.expect == ["put 15"] and block.exit == "0"
    with pytest.raises(AssertionError, match="expected 'put 15'"):
        check_output(block, "put 14, failed 1\n", "page.md")
    check_output(Block("bash", "", 1, ["put … failed 1"]), "put 14, failed 1", "page.md")
