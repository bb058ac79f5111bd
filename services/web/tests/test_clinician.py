"""The clinician's app in a real browser, launched by an EHR simulator: the EHR registers a
launch for its patient at the auth service (``POST /launch`` with its system/launch token) and
opens ``/launch?iss=&launch=``; the app does SMART discovery on the FHIR base, sends the
clinician to sign in (authorization code + PKCE), and gets the patient in context. The
clinician finds the food bank near the patient's ZIP, refers in three screens (choose, consent
and note, review and send); the food bank's staff accept and complete it in the inbox; the
clinician's timeline shows each step with the outcome. A launch naming a FHIR server the app
does not know is refused with a page, and nothing is asked of that server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from .browser import CLINIC, CLINICIAN, Stack, check_axe, in_thread, password_of
from .seed import FHIR, SDOHCC, food_bank
from .test_inbox import act, sign_in


async def _ehr_launch(stack: Stack) -> tuple[str, str]:
    """The EHR's side: its patient (synced to referral-api) and a launch for it."""
    async with httpx.AsyncClient(auth=stack.admin) as http:
        await food_bank(http, stack.directory)
        r = await http.post(
            f"{stack.referral}/Patient",
            headers=FHIR,
            json={
                "resourceType": "Patient",
                "name": [{"family": "Okafor", "given": ["Grace"]}],
                "birthDate": "1978-02-03",
                "address": [{"postalCode": "60614", "city": "Chicago", "state": "IL"}],
                "managingOrganization": {"reference": CLINIC},
            },
        )
        assert r.status_code == 201, r.text
        patient_id = r.json()["id"]
    async with httpx.AsyncClient(auth=stack.ehr) as ehr:
        r = await ehr.post(f"{stack.auth}/launch", json={"patient": patient_id})
        assert r.status_code in (200, 201), r.text
    return patient_id, str(r.json()["launch"])


def test_ehr_launch_find_refer_and_follow_the_loop(
    stack: Stack, page: Any, browser: Any, shots: Path
) -> None:
    _, launch = in_thread(_ehr_launch(stack))
    page.goto(f"{stack.web}/launch?iss={stack.referral}&launch={launch}")
    assert page.url.startswith(f"{stack.auth}/authorize"), page.url
    page.get_by_label("Username").fill(CLINICIAN)
    page.get_by_label("Password").fill(password_of(CLINICIAN))
    page.get_by_role("button", name="Sign in").click()
    main = page.locator("main")
    expect(page.get_by_role("heading", level=1)).to_have_text("Social care referrals")
    expect(main).to_contain_text("Grace Okafor")
    expect(main).to_contain_text("No referrals for this patient yet.")
    check_axe(page)

    # 1. find help near the patient (the ZIP comes from the patient's address)
    expect(page.get_by_label("Near ZIP code")).to_have_value("60614")
    page.get_by_role("button", name="Search").click()
    expect(main).to_contain_text("Food pantry")
    expect(main).to_contain_text("Step 1 of 3")
    check_axe(page)
    page.screenshot(path=str(shots / "clinician-find-help.png"), full_page=True)
    page.get_by_role("link", name=re.compile("^Refer.*Food pantry")).first.click()

    # 2. consent and a note
    expect(main).to_contain_text("Step 2 of 3")
    page.get_by_role("button", name="Review").click()  # without consent: the browser stops it
    expect(main).to_contain_text("Step 2 of 3")
    page.get_by_label("The patient agrees to share this referral").check()
    page.get_by_label("Note for the organization (optional)").fill("Prefers afternoon calls")
    check_axe(page)
    page.get_by_role("button", name="Review").click()

    # 3. review and send
    expect(main).to_contain_text("Step 3 of 3")
    expect(main).to_contain_text("Prefers afternoon calls")
    check_axe(page)
    page.get_by_role("button", name="Send referral").click()
    expect(page.get_by_role("status")).to_have_text("The referral was sent.")
    expect(main.locator("ol.timeline")).to_contain_text("Sent, waiting for an answer")

    # the food bank accepts, starts and completes it in its inbox
    cbo = browser.new_context(bypass_csp=True)
    cbo_page = cbo.new_page()
    sign_in(cbo_page, stack)
    cbo_page.get_by_role("link", name=re.compile("Grace Okafor")).first.click()
    act(cbo_page, "Accept")
    act(cbo_page, "Start service")
    act(cbo_page, "Complete", "What was delivered (required)", "Groceries for a family of four")
    expect(cbo_page.get_by_role("status")).to_contain_text("The referral was completed.")
    cbo.close()

    # the clinician's timeline: every step, the outcome
    page.reload()
    timeline = main.locator("ol.timeline")
    for step in ("Sent, waiting for an answer", "Accepted", "In progress", "Completed"):
        expect(timeline).to_contain_text(step)
    expect(timeline).to_contain_text("Groceries for a family of four")
    check_axe(page)
    page.screenshot(path=str(shots / "clinician-timeline.png"), full_page=True)


def test_a_launch_from_an_unknown_ehr_is_refused(stack: Stack) -> None:
    with httpx.Client(base_url=stack.web) as http:
        r = http.get("/launch", params={"iss": "https://ehr.elsewhere.test/fhir", "launch": "x"})
        assert r.status_code == 400
        assert "This launch cannot be completed" in r.text and "Traceback" not in r.text
        r = http.get("/clinician")  # nobody signed in: to the sign-in
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/login")


async def _youth_pantry(stack: Stack) -> None:
    """A second food listing near 60614, for ages 12 to 24 only."""
    async with httpx.AsyncClient(auth=stack.admin) as http:
        bank = await food_bank(http, stack.directory)
        service = {
            "resourceType": "HealthcareService",
            "id": "youth-pantry",
            "active": True,
            "name": "Youth pantry",
            "providedBy": {"reference": f"Organization/{bank['organization_id']}"},
            "category": [{"coding": [{"system": SDOHCC, "code": "food-insecurity"}]}],
            "location": [{"reference": f"Location/{bank['organization_id']}-site"}],
            "eligibility": [{"comment": "Young people aged 12 to 24"}],
            "extension": [
                {
                    "url": "urn:closedloop:fhir:age-range",
                    "valueRange": {
                        "low": {"value": 12, "unit": "a"},
                        "high": {"value": 24, "unit": "a"},
                    },
                }
            ],
        }
        r = await http.put(f"{stack.directory}/HealthcareService/youth-pantry", json=service)
        assert r.status_code in (200, 201), r.text


async def _remove_youth_pantry(stack: Stack) -> None:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        r = await http.delete(f"{stack.directory}/HealthcareService/youth-pantry")
        assert r.status_code in (200, 204), r.text


def test_find_help_by_age(stack: Stack, page: Any) -> None:
    _, launch = in_thread(_ehr_launch(stack))
    in_thread(_youth_pantry(stack))
    try:
        _find_by_age(stack, page, launch)
    finally:
        in_thread(_remove_youth_pantry(stack))


def _find_by_age(stack: Stack, page: Any, launch: str) -> None:
    page.goto(f"{stack.web}/launch?iss={stack.referral}&launch={launch}")
    page.get_by_label("Username").fill(CLINICIAN)
    page.get_by_label("Password").fill(password_of(CLINICIAN))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Social care referrals")
    main = page.locator("main")
    page.get_by_role("button", name="Search").click()
    results = main.locator("ul.results")
    expect(results).to_contain_text("Youth pantry")  # no age given: every listing
    expect(results).to_contain_text("Who it is for: Young people aged 12 to 24")
    page.get_by_label("Patient's age (years)").fill("48")
    page.get_by_role("button", name="Search").click()
    expect(results).to_contain_text("Food pantry")
    expect(results).not_to_contain_text("Youth pantry")  # narrowed by directory-api's age
    expect(page.get_by_label("Patient's age (years)")).to_have_value("48")
    check_axe(page)
    page.get_by_label("Patient's age (years)").fill("16")
    page.get_by_role("button", name="Search").click()
    expect(results).to_contain_text("Youth pantry")
    page.goto(f"{stack.web}/clinician/find?category=food-insecurity&zip=60614&age=abc")
    expect(page.get_by_role("alert")).to_contain_text("whole number of years")


def test_find_help_map_without_tiles(stack: Stack, page: Any, shots: Path) -> None:
    """The results' sites as markers on a plain background: no request leaves this machine
    (auth's public name in these tests is ``localhost``)."""
    _, launch = in_thread(_ehr_launch(stack))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{stack.web}/launch?iss={stack.referral}&launch={launch}")
    page.get_by_label("Username").fill(CLINICIAN)
    page.get_by_label("Password").fill(password_of(CLINICIAN))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Social care referrals")
    page.get_by_role("button", name="Search").click()
    results_map = page.get_by_role("img", name=re.compile("^Map of the results"))
    expect(results_map).to_be_visible()
    expect(results_map.locator("path")).to_have_count(1)  # the food bank
    expect(results_map.locator("img.leaflet-tile")).to_have_count(0)
    expect(page.locator("main ul.results")).to_contain_text("Food pantry")  # the list stays
    check_axe(page)
    page.screenshot(path=str(shots / "clinician-find-map.png"), full_page=True)
    here = ("http://127.0.0.1:", "http://localhost:", "data:", "blob:")
    away = [u for u in requests if not u.startswith(here)]
    assert not away, away
    assert any("/static/leaflet/leaflet.js" in u for u in requests)
