"""Lazy plugins (#27): entry-point metadata says which plugin provides which ctype, handler and command, so a command
imports only the plugins it uses, and ``diana --help`` / ``diana plugins`` import no backend library."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

from diana_core.plugins import load_plugins, reset_plugin_manager
from tests.core.test_architecture import SQUATTER, _dist, site  # noqa: F401 - the fixture: a throwaway site dir

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pydicom", "pynetdicom", "requests", "celery", "redis", "numpy", "PIL", "watchdog", "dicognito")


def _modules_after(*argv: str) -> tuple[set[str], str]:
    """The top-level modules a fresh ``diana ARGV`` process holds when it ends, and its stdout."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['diana', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('diana_core.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES:' + ','.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES:"))
    return set(line[8:].split(",")), proc.stdout


def test_help_imports_no_backend_library_and_still_lists_plugin_commands():
    modules, out = _modules_after("--help")
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert {"diana_orthanc", "diana_dimse", "diana_redis", "diana_dicomweb"}.isdisjoint(modules)
    for command in ("collect", "upload", "worker", "demo", "mock", "export-png", "quarantine"):  # plugin commands are listed
        assert f"  {command} " in out, command


def test_plugins_lists_every_ctype_from_metadata_without_importing_backends():
    modules, out = _modules_after("--json", "plugins")
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    rows = {r["plugin"]: r for r in json.loads(out)}
    assert rows["orthanc"]["ctypes"] == ["ObservableOrthanc", "Orthanc"] and rows["orthanc"]["loaded"] is False
    assert rows["dimse"]["ctypes"] == ["DicomNode", "DicomReceiver"]
    assert rows["celery"]["commands"] == ["worker"]
    assert "upload_item" in rows["core"]["handlers"]
    assert rows["pixels"]["pixel_cleaners"] == ["tesseract"] and rows["pixels"]["loaded"] is False


def test_a_command_imports_only_the_plugin_whose_ctype_it_uses(tmp_path):
    services = tmp_path / "services.yml"
    services.write_text(f"d: {{ctype: DcmDir, path: {tmp_path}}}\n")
    modules, out = _modules_after("-s", str(services), "--json", "check", "d")
    assert json.loads(out)["d"].startswith("ok")
    assert "diana_dcmdir" in modules
    assert {"diana_orthanc", "diana_dimse", "diana_celery", "diana_redis", "requests", "pynetdicom", "celery"}.isdisjoint(
        modules)


def test_lazy_manager_loads_a_plugin_on_first_use_and_matches_eager_loading():
    lazy = load_plugins(lazy=True)
    assert "Orthanc" not in lazy.endpoints and lazy.infos["orthanc"].loaded is False
    from diana_orthanc import Orthanc

    assert lazy.endpoint_class("Orthanc") is Orthanc
    assert lazy.infos["orthanc"].loaded and "Redis" not in lazy.endpoints  # only the plugin asked for
    eager = load_plugins()
    assert set(lazy.load_all().endpoints) == set(eager.endpoints)
    assert set(lazy.handlers) == set(eager.handlers)
    for name, info in eager.infos.items():  # every first-party manifest says exactly what its plugin registers
        assert info.error is None, (name, info.error)
        for kind in ("ctypes", "handlers", "pixel_cleaners"):
            assert sorted(getattr(lazy.infos[name], kind)) == sorted(getattr(info, kind)), (name, kind)


def test_a_plugin_without_manifest_still_cannot_take_a_declared_first_party_ctype(site):  # noqa: F811
    _dist(site, "acme-squatter", "acme_squatter", SQUATTER, "aaa")  # no diana.ctypes: loaded when unknown asked
    plugins = load_plugins(lazy=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins.known("ctypes")  # what `diana plugins` does: loads plugins without manifest only
    assert "provided by both 'orthanc' and 'aaa'" in plugins.infos["aaa"].error
    assert "JsonThing" not in plugins.endpoints and "Orthanc" not in plugins.endpoints
    assert any("aaa" in str(w.message) for w in caught)
    from diana_orthanc import Orthanc

    assert plugins.endpoint_class("Orthanc") is Orthanc


def test_a_plugin_registering_other_ctypes_than_it_declares_is_refused_whole(site):  # noqa: F811
    body = """
        from diana_core import hookimpl
        from diana_core.ports import Endpoint

        class Declared(Endpoint):
            pass

        class Surprise(Endpoint):
            pass

        @hookimpl
        def diana_endpoints(register):
            register("Declared", Declared)
            register("Surprise", Surprise)
    """
    _dist(site, "acme-liar", "acme_liar", body, "liar")
    ep_file = next(site.glob("acme_liar-*.dist-info")) / "entry_points.txt"
    ep_file.write_text(ep_file.read_text() + "\n[diana.ctypes]\nDeclared = acme_liar\n")
    plugins = load_plugins(lazy=True)
    assert plugins.infos["liar"].ctypes == ["Declared"] and not plugins.infos["liar"].loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pytest

        from diana_core.errors import ConfigError

        with pytest.raises(ConfigError, match="ctype 'Declared' comes with plugin 'liar', which is broken"):
            plugins.endpoint_class("Declared")
    assert "declares ['Declared']" in plugins.infos["liar"].error
    assert "Surprise" not in plugins.endpoints
    reset_plugin_manager(None)
