"""The patient's status page in a real browser: a signed link (as the notifier writes it) opens
without a sign-in, in the patient's language (Spanish here, though the browser asks for
English), shows what was sent, to whom, the food bank's address, phone and hours, and the
status; once the referral is completed, referral-api's patient-voice questions are shown in
Spanish, answered, and stored in referral-api as a QuestionnaireResponse to that Questionnaire,
based on the Task; a second answer (another tab) is refused by referral-api and said so in words.
An expired or tampered link shows no data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from closedloop import links
from playwright.sync_api import expect

from .browser import LINK_SECRET, Stack, check_axe, in_thread
from .seed import complete, food_bank, referral

run = in_thread  # seeding through the APIs, from a sync (Playwright) test


async def _seed(stack: Stack) -> tuple[dict[str, Any], dict[str, str]]:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        bank = await food_bank(http, stack.directory)
        task = await referral(http, stack.referral, bank, language="es")
    return task, bank


async def _complete(stack: Stack, task: dict[str, Any]) -> None:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        await complete(http, stack.referral, task)


async def _feedback(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(auth=stack.admin) as http:
        r = await http.get(
            f"{stack.referral}/QuestionnaireResponse", params={"based-on": f"Task/{task_id}"}
        )
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def test_patient_link_in_spanish_then_feedback(stack: Stack, page: Any, shots: Path) -> None:
    task, _ = run(_seed(stack))
    link = links.status_link(stack.web, task["id"], LINK_SECRET, 3600)
    page.set_extra_http_headers({"Accept-Language": "en-US,en;q=0.9"})
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == "es"
    main = page.locator("main")
    assert "Su remisión" in main.inner_text()
    text = main.inner_text()
    for expected in (
        "Enviada, esperando respuesta",
        "Assistance with application for food pantry program",
        "Eastside Food Bank",
        "1200 W Fullerton Ave",
        "312-555-0142",
        "lun, mié, vie 09:00-17:00",
    ):
        assert expected in text, (expected, text)
    assert "Rivera" not in page.content()  # nothing about the patient on the page
    check_axe(page)
    page.screenshot(path=str(shots / "patient-status-es.png"), full_page=True)

    # the switch: English on request
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Sent, waiting for an answer" in page.locator("main").inner_text()
    page.get_by_role("link", name="Español").click()

    run(_complete(stack, task))
    page.goto(link)
    main = page.locator("main")
    assert "Completada" in main.inner_text()
    assert "two weeks of groceries" in main.inner_text()
    # the published patient-voice questions, in Spanish (from referral-api's Questionnaire)
    late = page.context.new_page()  # the same link open in another tab, answered later
    late.goto(link)

    def group(p: Any, question: str) -> Any:
        return p.get_by_role("group", name=question)

    group(page, "¿Recibió la ayuda para la que fue remitido?").get_by_label("Sí").check()
    group(page, "¿Qué tan útil fue?").get_by_label("Muy útil").check()
    group(page, "¿El personal le trató con respeto?").get_by_label("Siempre").check()
    group(page, "¿Pudo recibir ayuda en el idioma que prefiere?").get_by_label(
        "No necesitaba otro idioma"
    ).check()
    check_axe(page)
    page.screenshot(path=str(shots / "patient-survey-es.png"), full_page=True)
    page.get_by_role("button", name="Enviar").click()
    assert "Gracias. Sus respuestas se guardaron." in main.inner_text()
    saved = run(_feedback(stack, task["id"]))
    assert len(saved) == 1
    response = saved[0]
    assert response["questionnaire"] == "urn:closedloop:Questionnaire:patient-voice|1"
    assert response["status"] == "completed"
    assert response["basedOn"] == [{"reference": f"Task/{task['id']}"}]
    assert response["subject"] == task["for"]
    assert response["language"] == "es"
    answers = {i["linkId"]: i["answer"] for i in response["item"]}
    assert answers["help-received"] == [{"valueBoolean": True}]
    codes = {k: v[0]["valueCoding"]["code"] for k, v in answers.items() if k != "help-received"}
    assert codes == {
        "helpfulness": "very-helpful",
        "respect": "always",
        "language-access": "not-needed",
    }
    system = {v[0]["valueCoding"]["system"] for k, v in answers.items() if k != "help-received"}
    assert system == {"urn:closedloop:CodeSystem:patient-voice"}
    # opened again: answered already, no second form
    page.goto(link)
    assert "Ya respondió esta encuesta" in main.inner_text()
    assert page.get_by_role("button", name="Enviar").count() == 0
    # the other tab still shows the form: referral-api refuses a second response (409), in words
    group(late, "¿Recibió la ayuda para la que fue remitido?").get_by_label("No").check()
    late.get_by_role("button", name="Enviar").click()
    assert "Ya respondió esta encuesta. Gracias." in late.locator("main").inner_text()
    assert "Traceback" not in late.content()
    assert len(run(_feedback(stack, task["id"]))) == 1
    late.close()


def test_expired_and_tampered_links_show_nothing(stack: Stack, page: Any, shots: Path) -> None:
    task, _ = run(_seed(stack))
    expired = links.status_link(stack.web, task["id"], LINK_SECRET, 60, now=time.time() - 3600)
    page.set_extra_http_headers({"Accept-Language": "es"})
    response = page.goto(expired)
    assert response is not None and response.status == 403
    text = page.locator("main").inner_text()
    assert "Este enlace ha caducado" in text
    assert "Eastside" not in page.content() and "food pantry" not in page.content()
    check_axe(page)
    page.screenshot(path=str(shots / "patient-link-expired-es.png"), full_page=True)

    good = links.status_link(stack.web, task["id"], LINK_SECRET, 3600)
    for bad in (
        good.replace("exp=", "exp=1"),  # a later expiry, same signature
        good[:-2],  # cut short
        links.status_link(stack.web, task["id"], "another secret", 3600),
        good.replace(task["id"], task["id"][:-1] + ("x" if task["id"][-1] != "x" else "y")),
    ):
        response = page.goto(bad)
        assert response is not None and response.status == 403, bad
        assert "Este enlace no es válido" in page.locator("main").inner_text()
        assert "Eastside" not in page.content()


def test_feedback_needs_the_csrf_token_and_a_valid_link(stack: Stack) -> None:
    task, _ = run(_seed(stack))
    link = links.status_link(stack.web, task["id"], LINK_SECRET, 3600)
    path = link.removeprefix(stack.web)
    feedback = path.replace("?", "/feedback?", 1)
    with httpx.Client(base_url=stack.web) as http:
        http.get(path)  # sets the CSRF cookie
        r = http.post(feedback, data={"help-received": "true"})
        assert r.status_code == 403 and "The form expired" in r.text
        assert "Traceback" not in r.text
        r = http.get("/referrals/nope?exp=1&sig=x")
        assert r.status_code == 403
    assert run(_feedback(stack, task["id"])) == []


def test_other_pages_are_accessible_too(stack: Stack, page: Any, shots: Path) -> None:
    """The front page, a 404, the sign-in page the app sends people to, and the status page
    on a phone-sized screen."""
    page.goto(stack.web)
    expect(page.get_by_role("heading", level=1)).to_have_text("Closed Loop")
    check_axe(page)
    page.get_by_role("link", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    check_axe(page)
    response = page.goto(f"{stack.web}/nowhere")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Página no encontrada")
    check_axe(page)
    page.goto(f"{stack.web}/inbox")  # the auth service's sign-in page, in Spanish
    expect(page.get_by_label("Nombre de usuario")).to_be_visible()
    check_axe(page)

    task, _ = run(_seed(stack))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(links.status_link(stack.web, task["id"], LINK_SECRET, 3600))
    expect(page.locator("main")).to_contain_text("Eastside Food Bank")
    check_axe(page)
    page.screenshot(path=str(shots / "patient-status-phone-es.png"), full_page=True)
