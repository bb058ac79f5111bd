"""The loop metrics page in a real browser: referrals made in the test (four to a second food
bank: three completed and answered by the patient, one declined; three to the first), then an
administrator signs in and sees every CBO's figures (the second food bank's exactly, its one
decline hidden as "<3" under the test stack's small-cell limit of 3), the charts, the
patients' voice and the CSV; the first food bank's staff member sees only their own figures,
which differ from the administrator's by the other food bank's four referrals. Every figure is
referral-api's, read with the signed-in person's token."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from .browser import BANK_ID, CBO_USER, FHIR, Stack, add_user, check_axe, in_thread, password_of
from .seed import complete, food_bank, move, post, referral

OTHER_ID = "westside-pantry"
OTHER = f"Organization/{OTHER_ID}"
ADMIN_USER = "ada"
VOICE = "urn:closedloop:Questionnaire:patient-voice"
ANSWERS = "urn:closedloop:CodeSystem:patient-voice"


async def _seed(stack: Stack) -> None:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        bank = await food_bank(http, stack.directory)
        other = await food_bank(http, stack.directory, OTHER_ID, "Westside Pantry")
        for _ in range(3):
            await referral(http, stack.referral, bank)
        for n in range(4):
            task = await referral(http, stack.referral, other, language="en")
            if n == 3:
                await move(http, stack.referral, task, "rejected", statusReason={"text": "Full"})
                continue
            done = await complete(http, stack.referral, task)
            await post(
                http,
                f"{stack.referral}/QuestionnaireResponse",
                {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": VOICE,
                    "status": "completed",
                    "basedOn": [{"reference": f"Task/{done['id']}"}],
                    "subject": done["for"],
                    "item": [
                        {"linkId": "help-received", "answer": [{"valueBoolean": True}]},
                        {
                            "linkId": "helpfulness",
                            "answer": [
                                {"valueCoding": {"system": ANSWERS, "code": "very-helpful"}}
                            ],
                        },
                    ],
                },
            )


async def _sent(stack: Stack, owner: str | None = None) -> int:
    """The month's referrals sent, as referral-api counts them for an admin."""
    today = datetime.now(UTC).date()
    params = {"periodStart": today.replace(day=1).isoformat(), "periodEnd": today.isoformat()}
    if owner:
        params["owner"] = owner
    async with httpx.AsyncClient(auth=stack.admin) as http:
        r = await http.get(
            f"{stack.referral}/Measure/closed-loop/$evaluate-measure", params=params, headers=FHIR
        )
    assert r.status_code == 200, r.text
    group = r.json()["group"][0]
    return next(p["count"] for p in group["population"] if p["code"]["coding"][0]["code"] == "sent")


def _sign_in(page: Any, stack: Stack, username: str) -> None:
    page.goto(f"{stack.web}/measures")
    assert page.url.startswith(f"{stack.auth}/authorize"), page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password_of(username))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Loop metrics")


def _figure(page: Any, where: str, name: str) -> str:
    return str(page.locator(f'{where} [data-figure="{name}"]').first.inner_text()).strip()


def test_loop_metrics_admin_sees_all_a_cbo_its_own(
    stack: Stack, page: Any, browser_context_args: dict[str, Any], shots: Path
) -> None:
    in_thread(_seed(stack))
    add_user(stack.auth_env, ADMIN_USER, "admin", "Organization/clinic-1")
    all_sent = in_thread(_sent(stack))
    own_sent = in_thread(_sent(stack, f"Organization/{BANK_ID}"))
    assert all_sent == own_sent + 4  # every other test's referrals go to the first food bank

    _sign_in(page, stack, ADMIN_USER)
    main = page.locator("main")
    assert _figure(page, "#totals", "sent") == str(all_sent)
    row = f'#by-cbo tr[data-org="{OTHER}"]'
    expect(page.locator(row)).to_contain_text("Westside Pantry")  # the name, from directory-api
    assert {n: _figure(page, row, n) for n in ("sent", "accepted", "declined", "completed")} == {
        "sent": "4",
        "accepted": "3",
        "declined": "<3",  # one decline: a small cell, hidden by referral-api
        "completed": "3",
    }
    assert _figure(page, row, "closure-rate") == "75 %"
    expect(page.locator(f'#by-cbo tr[data-org="Organization/{BANK_ID}"]')).to_have_count(1)
    # the charts: referral-api's SVG as images that decode
    images = page.locator("figure.chart img")
    expect(images).to_have_count(2)
    for i in range(2):
        assert images.nth(i).get_attribute("src").startswith("data:image/svg+xml;base64,")
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    # the patients' voice, in the page's language from the published Questionnaire
    voice = page.locator(f'table.voice[data-org="{OTHER}"]')
    expect(voice.locator('[data-figure="responses"]')).to_have_text("3")
    expect(voice).to_contain_text("Did you get the help you were referred for?")
    expect(voice.get_by_role("row", name="How helpful was it? Very helpful 3")).to_have_count(1)
    check_axe(page)
    page.screenshot(path=str(shots / "loop-metrics-admin.png"), full_page=True)

    # the CSV of the same period, through the app with the same sign-in
    href = page.get_by_role("link", name="Download the figures (CSV)").get_attribute("href")
    csv = page.request.get(f"{stack.web}{href}")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert OTHER in csv.text()

    # the year: the same referrals (this month is in it)
    page.get_by_label("Period").select_option(str(datetime.now(UTC).year))
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{stack.web}/measures?period={datetime.now(UTC).year}")
    assert _figure(page, row, "sent") == "4"

    # the first food bank's staff, in a browser of their own: its own figures only
    cbo = page.context.browser.new_context(**browser_context_args)
    page = cbo.new_page()
    _sign_in(page, stack, CBO_USER)
    main = page.locator("main")
    assert _figure(page, "#totals", "sent") == str(own_sent)
    assert int(_figure(page, "#totals", "sent")) == all_sent - 4
    expect(page.locator("#by-cbo tbody tr")).to_have_count(1)
    expect(page.locator(f'#by-cbo tr[data-org="Organization/{BANK_ID}"]')).to_have_count(1)
    assert "Westside" not in main.inner_text() and OTHER_ID not in page.content()
    expect(page.locator(f'table.voice[data-org="{OTHER}"]')).to_have_count(0)
    csv = page.request.get(f"{stack.web}/measures/loop-metrics.csv")
    assert csv.status == 200 and OTHER_ID not in csv.text()
    page.get_by_role("link", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Métricas de las remisiones")
    expect(main).to_contain_text("Enviadas")
    check_axe(page)
    page.screenshot(path=str(shots / "loop-metrics-cbo-es.png"), full_page=True)
    cbo.close()


def test_loop_metrics_need_a_staff_sign_in(stack: Stack, page: Any) -> None:
    with httpx.Client(base_url=stack.web) as http:
        for path in ("/measures", "/measures/loop-metrics.csv?period=2026"):
            r = http.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/auth/login"), path
    # a clinician is signed in, but the figures are for staff: a page that says so
    add_user(stack.auth_env, "cleo", "clinician", "Organization/clinic-1")
    page.goto(f"{stack.web}/measures")
    page.get_by_label("Username").fill("cleo")
    page.get_by_label("Password").fill(password_of("cleo"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("main")).to_contain_text("You are not allowed to do this.")
    response = page.request.get(f"{stack.web}/measures/loop-metrics.csv")
    assert response.status == 403 and "text/csv" not in response.headers["content-type"]
    assert page.get_by_role("link", name="Loop metrics").count() == 0
