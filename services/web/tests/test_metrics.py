"""The web app's /metrics, like the other services': Prometheus scrapes it in Kubernetes
(deploy/kubernetes/base/web.yaml), by route template so no task id or signed link appears."""

from __future__ import annotations

from fastapi.testclient import TestClient
from web.app import create_app
from web.settings import Settings


def test_metrics_count_requests_by_route_template() -> None:
    with TestClient(create_app(Settings())) as client:
        assert client.get("/healthz").status_code == 200
        client.get("/referrals/secret-task-id", params={"l": "a.b.c"})
        body = client.get("/metrics").text
    assert 'route="/healthz"' in body
    assert 'route="/referrals/{task_id}"' in body
    assert "secret-task-id" not in body


def test_metrics_can_be_turned_off() -> None:
    with TestClient(create_app(Settings(metrics_enabled=False))) as client:
        assert client.get("/metrics").status_code == 404
