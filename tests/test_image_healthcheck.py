"""The image's HEALTHCHECK script (deploy/docker/healthcheck.py): it finds the serving
process's port the way the service does, and answers 0 only while that service's /healthz
does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from closedloop.testing import free_port, load_script, running_service

ROOT = Path(__file__).resolve().parent.parent
H = load_script(ROOT / "deploy" / "docker" / "healthcheck.py")


class TestHealthUrl:
    @pytest.mark.parametrize(
        ("argv", "env", "url"),
        [
            (["/app/.venv/bin/python", "/app/.venv/bin/referral-api", "serve"], {}, 8081),
            (["/app/.venv/bin/python", "/app/.venv/bin/notifier", "serve"], {}, 8083),
            (["auth", "serve"], {"AUTH_PORT": "9000"}, 9000),
            (["directory-api", "serve", "--port", "9100"], {"DIRECTORY_API_PORT": "1"}, 9100),
            (["directory-api", "serve", "--port=9101"], {}, 9101),
            (["python", "-m", "notifier.cli", "serve"], {"NOTIFIER_PORT": "9200"}, 9200),
        ],
    )
    def test_a_serving_command(self, argv: list[str], env: dict[str, str], url: int) -> None:
        assert H.health_url(argv, env) == f"http://127.0.0.1:{url}/healthz"

    @pytest.mark.parametrize(
        "argv",
        [
            ["/app/.venv/bin/python", "/app/.venv/bin/referral-api", "migrate"],
            ["auth", "clients", "list"],
            ["sh", "-c", "referral-api migrate && auth migrate"],
            ["python", "/app/healthcheck.py"],
            ["postgres", "-D", "/var/lib/postgresql/data"],
        ],
    )
    def test_anything_else_serves_nothing(self, argv: list[str]) -> None:
        assert H.health_url(argv, {}) is None

    def test_it_finds_its_own_process_in_proc(self) -> None:
        """``running_commands`` reads the real /proc: this test's own command line is in it."""
        commands = H.running_commands()
        assert any(any("pytest" in part for part in argv) for argv in commands)


async def test_it_answers_as_the_running_service_does(tmp_path: Path) -> None:
    port = free_port()
    serving = [["python", "-m", "directory_api.cli", "serve"]]
    env = {"DIRECTORY_API_PORT": str(port)}
    assert await asyncio.to_thread(H.check, serving, env) == 1  # nothing listens yet
    async with running_service(
        "directory_api", "DIRECTORY_API_", f"sqlite:///{tmp_path}/d.db", port=port
    ):
        assert await asyncio.to_thread(H.check, serving, env) == 0
    assert await asyncio.to_thread(H.check, [["auth", "migrate"]], env) == 0  # a one-shot
