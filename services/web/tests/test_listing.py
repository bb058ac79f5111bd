"""A CBO edits its own listing in a real browser (directory-api with the person's token): the
change shows in directory search; a listing changed meanwhile is a message to reload, a bad
value a message naming it; another organization's listing is not found."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from .browser import Stack, check_axe, in_thread
from .seed import food_bank
from .test_inbox import sign_in

SERVICE = "eastside-food-bank-pantry"


async def _search(stack: Stack, params: dict[str, str]) -> list[str]:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        r = await http.get(f"{stack.directory}/HealthcareService", params=params)
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


async def _bump(stack: Stack) -> None:
    """Someone else changes the listing (an admin, elsewhere)."""
    async with httpx.AsyncClient(auth=stack.admin) as http:
        url = f"{stack.directory}/HealthcareService/{SERVICE}"
        body = (await http.get(url)).json()
        r = await http.put(url, json={**body, "comment": "Changed elsewhere"})
        assert r.status_code == 200, r.text


def test_cbo_edits_its_listing(stack: Stack, page: Any, shots: Path) -> None:
    async def seed() -> None:
        async with httpx.AsyncClient(auth=stack.admin) as http:
            await food_bank(http, stack.directory)

    in_thread(seed())
    sign_in(page, stack)
    page.get_by_role("link", name="Capacity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Taking referrals?")
    page.get_by_role("link", name=re.compile("^Edit listing.*Food pantry")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your listing: Food pantry")
    expect(page.get_by_label("Phone")).to_have_value("312-555-0142")
    expect(page.get_by_label("Friday")).to_be_checked()
    check_axe(page)
    page.get_by_label("Service name").fill("Eastside pantry and kitchen")
    page.get_by_label("Description").fill("Groceries twice a week and hot meals")
    page.get_by_label("Email").fill("help@eastside.example.org")
    page.get_by_label("Web site").fill("https://eastside.example.org")
    page.get_by_label("Housing").check()
    page.get_by_label("Languages spoken").fill("en, es")
    page.get_by_label("Who can get this service (eligibility)").fill("Anyone living in 60614")
    page.get_by_label("Saturday").check()
    page.get_by_label("Closes at").fill("18:30")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    expect(page.get_by_label("Service name")).to_have_value("Eastside pantry and kitchen")
    expect(page.get_by_label("Saturday")).to_be_checked()
    page.screenshot(path=str(shots / "cbo-listing.png"), full_page=True)
    assert SERVICE in in_thread(_search(stack, {"_content": "hot meals", "communication": "es"}))
    assert SERVICE in in_thread(_search(stack, {"service-category": "housing-instability"}))
    assert SERVICE in in_thread(_search(stack, {"open": "2026-12-12T18:00"}))  # a Saturday

    # someone else changed it after the form was read: nothing written, a message to reload
    in_thread(_bump(stack))
    page.get_by_label("Service name").fill("Lost update")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Someone else changed this listing")
    check_axe(page)
    assert SERVICE not in in_thread(_search(stack, {"name": "Lost update"}))

    # a refused value names the field
    page.goto(f"{stack.web}/inbox/listings/{SERVICE}")
    page.get_by_label("Languages spoken").fill("en, not a language!")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("The request was refused: languages:")

    # the Spanish page
    page.goto(f"{stack.web}/inbox/listings/{SERVICE}?lang=es")
    expect(page.get_by_label("Nombre del servicio")).to_have_value("Eastside pantry and kitchen")
    check_axe(page)
