"""The service-file and routes examples in contrib/ build with every installed plugin (no server contacted)."""

from pathlib import Path

import pytest

from diana_core import load_services
from diana_core.errors import ConfigError
from diana_core.usecases.routes import mk_route

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
SECRETS = ("PROXY_PASSWORD", "RESEARCH_PASSWORD", "REDIS_PASSWORD", "MONTAGE_USER", "MONTAGE_PASSWORD")


def test_every_example_service_builds(monkeypatch, tmp_path):
    for name in SECRETS:
        monkeypatch.setenv(name, "x")
    services = load_services(CONTRIB / "services.example.yml")
    assert len(services) == 10
    for name in services:
        if name in ("archive", "incoming", "modality_in"):
            continue  # folders under /data are not created by a test
        assert services[name].name == name


def test_example_routes_build(monkeypatch):
    import yaml

    for name in SECRETS:
        monkeypatch.setenv(name, "x")
    services = load_services(CONTRIB / "services.example.yml")
    routes = yaml.safe_load((CONTRIB / "routes.example.yml").read_text())["routes"]
    for route in routes:
        trigger = mk_route(route["handler"], route["source"], route["dest"], services=services,
                           **route.get("options", {}))
        assert trigger.event_type is not None


def test_examples_need_their_secrets(monkeypatch):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="RESEARCH_PASSWORD"):
        load_services(CONTRIB / "services.example.yml")["research"]
