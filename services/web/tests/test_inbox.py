"""The CBO inbox in a real browser: a food bank's staff member signs in through the auth
service's page (authorization code + PKCE, the web app a confidential client), sees the
referral sent to the food bank with the patient's minimum necessary details, and moves it
through referral-api's real state machine: accept, start, hold (with a reason), resume,
complete with an outcome (a Procedure in the Task's output); another is declined with a
reason, a third cancelled. Forms without the CSRF token do nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from .browser import CBO_USER, Stack, check_axe, in_thread, password_of
from .seed import food_bank, referral


async def _seed(stack: Stack, count: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        bank = await food_bank(http, stack.directory)
        return [await referral(http, stack.referral, bank) for _ in range(count)]


async def _read(stack: Stack, ref: str) -> dict[str, Any]:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        r = await http.get(f"{stack.referral}/{ref}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def sign_in(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.web}/inbox")
    assert page.url.startswith(f"{stack.auth}/authorize"), page.url  # the auth service's page
    page.get_by_label("Username").fill(CBO_USER)
    page.get_by_label("Password").fill(password_of(CBO_USER))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Incoming referrals")


def act(page: Any, button: str, field: str | None = None, text: str = "") -> None:
    if field:
        page.get_by_label(field).fill(text)
    page.get_by_role("button", name=button).click()


def test_cbo_moves_a_referral_through_the_loop(stack: Stack, page: Any, shots: Path) -> None:
    task, declined, cancelled = in_thread(_seed(stack, 3))
    sign_in(page, stack)
    main = page.locator("main")
    expect(main).to_contain_text("Ana Rivera")
    check_axe(page)
    page.screenshot(path=str(shots / "cbo-inbox.png"), full_page=True)

    page.goto(f"{stack.web}/inbox/referrals/{task['id']}")
    for expected in ("Ana Rivera", "1990-05-17", "312-555-0199", "Español", "60614", "food pantry"):
        expect(main).to_contain_text(expected)
    check_axe(page)
    page.screenshot(path=str(shots / "cbo-referral.png"), full_page=True)

    act(page, "Accept")
    expect(page.get_by_role("status")).to_have_text("The referral was accepted.")
    act(page, "Start service")
    expect(page.get_by_role("status")).to_have_text("The service has started.")
    act(page, "Put on hold", "Reason for the hold (required)", "Waiting for documents")
    expect(page.get_by_role("status")).to_have_text("The referral is on hold.")
    expect(main).to_contain_text("Reason: Waiting for documents")
    act(page, "Resume")
    act(page, "Complete", "What was delivered (required)", "Two weeks of groceries")
    expect(page.get_by_role("status")).to_contain_text("The referral was completed.")
    expect(main).to_contain_text("Outcome: Two weeks of groceries")
    expect(main).to_contain_text("nothing more to do")
    check_axe(page)
    page.screenshot(path=str(shots / "cbo-referral-completed.png"), full_page=True)

    stored = in_thread(_read(stack, f"Task/{task['id']}"))
    assert stored["status"] == "completed"
    ref = stored["output"][0]["valueReference"]["reference"]
    procedure = in_thread(_read(stack, ref))
    assert procedure["code"]["text"] == "Two weeks of groceries"
    assert procedure["basedOn"] == [task["focus"]]
    service_request = in_thread(_read(stack, task["focus"]["reference"]))
    assert service_request["status"] == "completed"  # the loop closed in referral-api

    page.goto(f"{stack.web}/inbox/referrals/{declined['id']}")
    act(page, "Decline", "Reason for declining (required)", "Outside our service area")
    expect(page.get_by_role("status")).to_have_text("The referral was declined.")
    stored = in_thread(_read(stack, f"Task/{declined['id']}"))
    assert stored["status"] == "rejected"
    assert stored["statusReason"]["text"] == "Outside our service area"

    page.goto(f"{stack.web}/inbox/referrals/{cancelled['id']}")
    act(page, "Accept")
    act(page, "Cancel referral", "Reason for cancelling (required)", "Patient moved away")
    expect(page.get_by_role("status")).to_have_text("The referral was cancelled.")
    assert in_thread(_read(stack, f"Task/{cancelled['id']}"))["status"] == "cancelled"

    # the filter (htmx updates the list in place; the page also works without script)
    page.goto(f"{stack.web}/inbox?show=closed")
    expect(main).to_contain_text("Declined")
    page.get_by_label("Show").select_option("open")
    expect(page).to_have_url(f"{stack.web}/inbox?show=open")

    # Spanish: the switch in the header
    page.get_by_role("link", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remisiones recibidas")
    check_axe(page)


def test_inbox_forms_need_csrf_and_a_sign_in(stack: Stack) -> None:
    (task,) = in_thread(_seed(stack, 1))
    with httpx.Client(base_url=stack.web) as http:
        r = http.get("/inbox")
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/login")
        r = http.get("/auth/login?next=//evil.example/x")
        assert r.status_code == 303 and r.headers["location"].startswith(stack.auth)
        r = http.post(f"/inbox/referrals/{task['id']}/move", data={"action": "accept"})
        assert r.status_code == 403 and "The form expired" in r.text
        r = http.get("/auth/callback?code=x&state=y")  # no login in flight
        assert r.status_code == 400 and "Traceback" not in r.text
    assert in_thread(_read(stack, f"Task/{task['id']}"))["status"] == "requested"


async def _search_capacity(stack: Stack, status: str) -> list[str]:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        r = await http.get(
            f"{stack.directory}/HealthcareService", params={"capacity-status": status}
        )
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


def test_cbo_sets_its_capacity_and_directory_search_shows_it(
    stack: Stack, page: Any, shots: Path
) -> None:
    in_thread(_seed(stack, 0))  # the food bank's listing
    sign_in(page, stack)
    page.get_by_role("link", name="Capacity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Taking referrals?")
    page.get_by_label("Capacity of Food pantry").select_option("waitlist")
    page.get_by_role("button", name=re.compile("^Save.*Food pantry")).click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    expect(page.get_by_label("Capacity of Food pantry")).to_have_value("waitlist")
    check_axe(page)
    page.screenshot(path=str(shots / "cbo-capacity.png"), full_page=True)
    assert "eastside-food-bank-pantry" in in_thread(_search_capacity(stack, "waitlist"))
    page.get_by_label("Capacity of Food pantry").select_option("capacity")
    page.get_by_role("button", name=re.compile("^Save.*Food pantry")).click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    assert "eastside-food-bank-pantry" in in_thread(_search_capacity(stack, "capacity"))
