"""Plugin manager validation and service files (YAML/JSON, ${ENV}, errors naming service and key)."""

import json
import types
import warnings

import pytest
from attrs import define

from diana_core import Endpoint, hookimpl
from diana_core.embedded import MemoryEndpoint, SqliteRegistry
from diana_core.errors import ConfigError, PluginError
from diana_core.plugins import load_plugins, reset_plugin_manager
from diana_core.services import load_services


@pytest.fixture
def core_only():
    plugins = load_plugins(entry_points=False)
    reset_plugin_manager(plugins)
    yield plugins
    reset_plugin_manager(None)


def _plugin(ctype, cls):
    @hookimpl
    def diana_endpoints(register):
        register(ctype, cls)

    return types.SimpleNamespace(diana_endpoints=diana_endpoints)


def test_duplicate_ctype_is_a_clear_error(core_only):
    @define(kw_only=True)
    class Other(Endpoint):
        pass

    with pytest.raises(PluginError, match="'MemoryEndpoint' is provided by both 'core' and 'rogue'"):
        core_only.add(_plugin("MemoryEndpoint", Other), name="rogue")
    assert core_only.endpoints["MemoryEndpoint"] is MemoryEndpoint


def test_unknown_ctype_names_the_extra(core_only):
    with pytest.raises(ConfigError, match=r"unknown ctype 'Orthanc' in service 'pacs'.*diana-dicom\[orthanc\]"):
        load_services({"pacs": {"ctype": "Orthanc"}})["pacs"]


def test_disabled_entry_points_load_only_the_core(monkeypatch):
    monkeypatch.setenv("DIANA_PLUGINS", "")
    plugins = load_plugins()
    assert set(plugins.infos) == {"core"}


def test_broken_plugin_is_reported_not_fatal(monkeypatch):
    from importlib import metadata

    class BrokenEP:
        name, dist, value = "broken", None, "nowhere"

        def load(self):
            raise ImportError("no module named nowhere")

    class WithBroken:  # the installed entry points plus the broken one (the core reads them all in one call)
        def __init__(self, real):
            self.real = real

        def select(self, group):
            found = list(self.real.select(group=group))
            return [BrokenEP(), *found] if group == "diana" else found

    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda: WithBroken(real()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins()
    assert "no module named nowhere" in plugins.infos["broken"].error
    assert "MemoryEndpoint" in plugins.endpoints
    assert any("broken" in str(w.message) for w in caught)


def test_yaml_service_file_with_env_expansion(tmp_path, monkeypatch, core_only):
    monkeypatch.setenv("REG_DIR", str(tmp_path))
    f = tmp_path / "services.yml"
    f.write_text("reg:\n  ctype: SqliteRegistry\n  path: ${REG_DIR}/reg.sqlite\nmem: {ctype: MemoryEndpoint}\n")
    services = load_services(f)
    assert set(services) == {"reg", "mem"}
    reg = services["reg"]
    assert isinstance(reg, SqliteRegistry) and reg.path == f"{tmp_path}/reg.sqlite" and reg.name == "reg"
    assert services["reg"] is reg  # built once


def test_json_service_file_and_default_values(tmp_path, monkeypatch, core_only):
    monkeypatch.delenv("NOPE", raising=False)
    f = tmp_path / "services.json"
    f.write_text(json.dumps({"reg": {"ctype": "SqliteRegistry", "path": "${NOPE:-/tmp/x.sqlite}"}}))
    assert load_services(f)["reg"].path == "/tmp/x.sqlite"


def test_errors_name_service_and_key(tmp_path, monkeypatch, core_only):
    monkeypatch.delenv("MISSING_SECRET", raising=False)
    services = load_services({"reg": {"ctype": "SqliteRegistry", "pth": "x"},
                              "sec": {"ctype": "SqliteRegistry", "path": "${MISSING_SECRET}"}})
    with pytest.raises(ConfigError, match="service 'reg'.*unknown key 'pth'"):
        services["reg"]
    with pytest.raises(ConfigError, match="service 'sec', key 'path'.*MISSING_SECRET"):
        services["sec"]
    with pytest.raises(ConfigError, match="no service named 'other'"):
        services["other"]
    with pytest.raises(ConfigError, match="needs a mapping with a 'ctype'"):
        load_services({"x": {"path": "y"}})


def test_unsafe_yaml_is_refused(tmp_path, core_only):
    f = tmp_path / "evil.yml"
    f.write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_services(f)


def test_endpoint_round_trip_through_asdict(core_only):
    reg = SqliteRegistry(name="r", path="/tmp/r.sqlite")
    data = reg.asdict()
    assert data == {"ctype": "SqliteRegistry", "name": "r", "path": "/tmp/r.sqlite"}
    assert SqliteRegistry.fromdict(data) == reg


def test_unsupported_operation_names_endpoint(core_only):
    from diana_core.errors import NotSupportedError

    with pytest.raises(NotSupportedError, match="SqliteRegistry 'r' does not support put"):
        SqliteRegistry(name="r").put(None)


def test_secret_fields_stay_out_of_dumps_and_repr():
    from diana_core.ports import secret_field

    @define(kw_only=True)
    class WithPassword(Endpoint):
        user: str | None = None
        password: str | None = secret_field()

    ep = WithPassword(user="u", password="hunter2")
    assert "hunter2" not in repr(ep)
    assert ep.asdict() == {"ctype": "WithPassword", "user": "u"}  # defaults left out (the original's form)
    assert ep.asdict(full=True) == {"ctype": "WithPassword", "name": "Endpoint", "user": "u"}
    assert ep.asdict(include_secrets=True)["password"] == "hunter2"


def test_nested_service_descriptions_lose_their_passwords_in_dumps():
    @define(kw_only=True)
    class Proxyish(Endpoint):
        proxy_desc: dict = {}

    ep = Proxyish(proxy_desc={"ctype": "Orthanc", "user": "u", "password": "hunter2"})
    assert ep.asdict()["proxy_desc"] == {"ctype": "Orthanc", "user": "u"}
    assert ep.asdict(include_secrets=True)["proxy_desc"]["password"] == "hunter2"

