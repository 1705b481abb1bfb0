"""The core's shape: no import cycles, layers respected, capabilities as protocols, plugins that cannot hurt the host.

Plugins here are real distributions: a ``*.dist-info`` folder with an ``entry_points.txt`` on ``sys.path``, found by
``importlib.metadata`` exactly like an installed third-party plugin.
"""

import ast
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from diana_core.plugins import load_plugins, reset_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "diana_core"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), over every import grimp sees."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return out


def test_core_has_no_import_cycle_even_through_deferred_imports():
    import grimp  # a dev tool: imported here so the plugin-site helpers below load without it (./dev lowest)

    # grimp records imports inside functions too, so a deferred import cannot hide a cycle from this test
    graph = grimp.build_graph("diana_core", include_external_packages=False)
    assert len(graph.modules) > 30
    assert _cycles(graph) == []


def test_ports_do_not_reach_up_into_services_or_plugins():
    import grimp

    graph = grimp.build_graph("diana_core", include_external_packages=False)
    for upper in ("diana_core.services", "diana_core.plugins", "diana_core.usecases", "diana_core.cli"):
        assert not graph.chain_exists(importer="diana_core.ports", imported=upper, as_packages=True), upper


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "layered" in proc.stdout and "0 broken" in proc.stdout


PROBED_CAPABILITIES = {"retrieves", "anonymizing", "pseudonymizer", "add_many", "total", "put_many", "read_header",
                       "read_tags", "header"}


def test_use_cases_ask_for_protocols_not_attribute_names():
    probes = []
    for path in sorted((CORE / "usecases").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in {"getattr", "hasattr"} and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in PROBED_CAPABILITIES):
                probes.append(f"{path.name}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})")
    assert probes == []


# --- plugins that misbehave -------------------------------------------------------------------------------------
def _dist(site: Path, dist: str, module: str, body: str, ep_name: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[diana]\n{ep_name} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("acme_")]:
        del sys.modules[name]
    reset_plugin_manager(None)


SQUATTER = """
    from diana_core import hookimpl
    from diana_core.ports import Endpoint

    class FakeOrthanc(Endpoint):
        pass

    class JsonThing(Endpoint):
        pass

    @hookimpl
    def diana_endpoints(register):
        register("JsonThing", JsonThing)   # fine on its own ...
        register("Orthanc", FakeOrthanc)   # ... but this one belongs to diana-dicom-orthanc
"""


def test_first_party_keeps_its_ctype_and_a_refused_plugin_leaves_nothing_behind(site):
    # "aaa" sorts before "orthanc": loaded in name order, the squatter would have taken Orthanc
    _dist(site, "acme-squatter", "acme_squatter", SQUATTER, "aaa")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins()
    from diana_orthanc import Orthanc

    assert plugins.endpoints["Orthanc"] is Orthanc
    assert plugins.infos["orthanc"].error is None
    assert "JsonThing" not in plugins.endpoints  # rolled back whole, not half registered
    assert "provided by both 'orthanc' and 'aaa'" in plugins.infos["aaa"].error
    assert any("aaa" in str(w.message) for w in caught)


def test_plugin_exiting_at_import_does_not_stop_the_host(site):
    _dist(site, "acme-exit", "acme_exit", "import sys\nsys.exit(3)\n", "exiter")
    env_path = f"{site}:{ROOT}"
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "--help"], capture_output=True, text=True,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "collect" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "plugins"], capture_output=True, text=True,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "exiter" in proc.stdout and "SystemExit" in proc.stdout


def test_plugin_failing_while_registering_is_refused_whole(site):
    body = """
        from diana_core import hookimpl
        from diana_core.ports import Endpoint

        class Half(Endpoint):
            pass

        @hookimpl
        def diana_endpoints(register):
            register("Half", Half)
            raise RuntimeError("bug in the plugin")
    """
    _dist(site, "acme-half", "acme_half", body, "half")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plugins = load_plugins()
    assert "Half" not in plugins.endpoints
    assert "bug in the plugin" in plugins.infos["half"].error
    assert "Orthanc" in plugins.endpoints  # the others still load


def test_unknown_names_in_diana_plugins_are_reported(monkeypatch):
    monkeypatch.setenv("DIANA_PLUGINS", "orthanc,typo")
    with pytest.warns(UserWarning, match=r"DIANA_PLUGINS names typo, not installed; installed plugins: .*orthanc"):
        plugins = load_plugins()
    assert set(plugins.infos) == {"core", "orthanc"}


def test_a_class_registered_in_python_builds_from_a_description(tmp_path):
    from attrs import define

    from diana_core import Endpoint, Serializable, load_services

    @Serializable.register
    @define(kw_only=True)
    class ScriptEndpoint(Endpoint):
        path: str = ""

    services = load_services({"mine": {"ctype": "ScriptEndpoint", "path": str(tmp_path)}})
    built = services["mine"]
    assert isinstance(built, ScriptEndpoint) and built.path == str(tmp_path) and built.name == "mine"
    assert Serializable.fromdict(built.asdict()) == built
