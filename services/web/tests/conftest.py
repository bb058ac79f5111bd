"""Fixtures of the web app's browser tests (see browser.py): the four services as real
processes, Playwright launching Debian's chromium, and where screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import CHROMIUM, SHOTS, Stack, missing, stack_in_thread


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last in the session: Playwright's sync API keeps the main
    thread's event loop marked as running from its first use until the session ends, and an
    async test after it could not run its own loop. Without chromium or axe-core they are
    skipped on a laptop and are an error in CI."""
    uses = [i for i in items if {"page", "stack"} & set(getattr(i, "fixturenames", ()))]
    if uses:
        items[:] = [i for i in items if i not in set(uses)] + uses
    reason = missing()
    if reason is None:
        return
    for item in uses:
        if "page" in getattr(item, "fixturenames", ()):
            if os.environ.get("CI"):  # CI must run them, never skip
                raise pytest.UsageError(f"browser tests cannot run in CI: {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-dev-shm-usage"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """axe-core is injected as a script tag, which the app's Content-Security-Policy (scripts
    from the app only) would refuse."""
    return {**browser_context_args, "bypass_csp": True}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with stack_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
