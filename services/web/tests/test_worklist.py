"""A case manager's worklist in a real browser (standalone sign-in, no EHR): the referrals the
clinic sent, the one with no answer for weeks on top and marked, a referral's timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from .browser import CASE_MANAGER, Stack, check_axe, in_thread, password_of
from .seed import food_bank, move, referral


async def _seed(stack: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    async with httpx.AsyncClient(auth=stack.admin) as http:
        bank = await food_bank(http, stack.directory)
        fresh = await referral(http, stack.referral, bank, authored=now, family="Fresh")
        fresh = await move(http, stack.referral, fresh, "accepted")
        old = await referral(
            http, stack.referral, bank, authored="2026-10-01T09:00:00Z", family="Waiting"
        )
    return old, fresh


def test_stalled_referrals_come_first(stack: Stack, page: Any, shots: Path) -> None:
    in_thread(_seed(stack))
    page.goto(f"{stack.web}/worklist")
    page.get_by_label("Username").fill(CASE_MANAGER)
    page.get_by_label("Password").fill(password_of(CASE_MANAGER))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Referrals sent")
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("Ana Waiting")
    expect(first).to_contain_text("No answer for")
    expect(page.locator("tbody")).to_contain_text("Ana Fresh")
    check_axe(page)
    page.screenshot(path=str(shots / "case-manager-worklist.png"), full_page=True)

    page.get_by_role("link", name=re.compile("^Open.*Ana Waiting")).first.click()
    expect(page.locator("ol.timeline")).to_contain_text("Sent, waiting for an answer")
    check_axe(page)

    page.goto(f"{stack.web}/worklist?show=closed")
    expect(page.locator("main")).not_to_contain_text("Ana Waiting")
