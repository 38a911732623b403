"""The API's liveness and readiness probes, served in-process."""

from __future__ import annotations

from importlib.metadata import version

import httpx

from api.app import create_app
from api.health import ReadinessCheck
from api.settings import ApiSettings


def client(checks: dict[str, ReadinessCheck] | None = None) -> httpx.AsyncClient:
    app = create_app(ApiSettings(host="127.0.0.1", port=8000), readiness_checks=checks)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://baylink")


async def test_healthz_says_ok() -> None:
    async with client() as api:
        response = await api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_every_check_passes() -> None:
    async with client({"event_store": lambda: None}) as api:
        response = await api.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_names_the_failing_dependency() -> None:
    async with client({"event_store": lambda: "connection refused"}) as api:
        response = await api.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "failing": {"event_store": "connection refused"},
    }


async def test_openapi_names_baylink_and_its_package_version() -> None:
    async with client() as api:
        info = (await api.get("/openapi.json")).json()["info"]

    assert info == {"title": "baylink", "version": version("baylink")}
