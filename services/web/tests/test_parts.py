"""The web app's parts that need no browser: language choice, how API refusals read, the
sealed cookies and CSRF tokens, a referral's transaction and timeline."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from web import home, i18n, signin, worklist
from web.api import ApiError, raise_for
from web.app import create_app
from web.clinician import pages as clinician
from web.clinician.referral import timeline, transaction
from web.inbox import pages as inbox
from web.inbox.moves import BY_ACTION, moved, moves_for
from web.patient import status
from web.security import csrf
from web.security.cookies import Sealer
from web.settings import Settings


def request(query: str = "", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "query_string": query.encode(), "headers": raw})


def test_language_order_switch_cookie_preference_header() -> None:
    assert i18n.from_accept_language("fr, es-MX;q=0.8, en;q=0.5") == "es"
    assert i18n.from_accept_language("en;q=0, es;q=0.1") == "es"
    assert i18n.from_accept_language("de") is None
    assert i18n.choose(request(headers={"Accept-Language": "es"})) == "es"
    assert i18n.choose(request(headers={"Accept-Language": "es"}), preferred="en") == "en"
    cookie = {"Cookie": "web_lang=es", "Accept-Language": "en"}
    assert i18n.choose(request(headers=cookie), preferred="en") == "es"
    assert i18n.choose(request("lang=en", headers=cookie)) == "en"
    assert i18n.choose(request("lang=xx")) == "en"
    assert set(i18n.TEXT["en"]) == set(i18n.TEXT["es"])  # every text in both languages


@pytest.mark.parametrize(
    ("status", "key"),
    [
        (401, "signed_out"),
        (403, "api_refused"),
        (404, "api_not_found"),
        (410, "api_not_found"),
        (409, "api_conflict"),
        (412, "api_conflict"),
        (422, "api_invalid"),
        (500, "api_unavailable"),
        (503, "api_unavailable"),
    ],
)
def test_refusals_become_texts(status: int, key: str) -> None:
    body = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "Task.status bad"}]}
    with pytest.raises(ApiError) as caught:
        raise_for(httpx.Response(status, json=body))
    assert caught.value.key == key
    if status == 422:
        assert caught.value.detail == "Task.status bad"
    raise_for(httpx.Response(200))


def test_sealed_cookies_cannot_be_read_or_forged() -> None:
    sealer = Sealer("secret-1", secure=True)
    response = Response()
    sealer.write(response, "web_session", {"role": "cbo-staff"}, 60)
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "Secure" in header and "SameSite=lax" in header
    assert "cbo-staff" not in header
    value = header.split(";")[0].split("=", 1)[1]
    assert sealer.read(request(headers={"Cookie": f"web_session={value}"}), "web_session", 60)
    other = Sealer("secret-2", secure=True)
    assert (
        other.read(request(headers={"Cookie": f"web_session={value}"}), "web_session", 60) is None
    )
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    assert (
        sealer.read(request(headers={"Cookie": f"web_session={forged}"}), "web_session", 60) is None
    )


def test_csrf_token_is_bound_to_the_secret_and_the_cookie() -> None:
    token = csrf.token_for("s", "cookie-value")
    assert token == csrf.token_for("s", "cookie-value")
    assert token != csrf.token_for("s", "other") and token != csrf.token_for("t", "cookie-value")


def test_moves_write_only_what_an_owner_may() -> None:
    assert [m.action for m in moves_for("requested")] == ["accept", "decline"]
    assert moves_for("completed") == ()
    task = {"resourceType": "Task", "id": "t", "status": "in-progress", "focus": {}, "note": []}
    after = moved(task, BY_ACTION["complete"], "", "p-1")
    assert after["status"] == "completed" and after["note"] == []
    assert after["output"][0]["valueReference"] == {"reference": "Procedure/p-1"}
    assert moved(task, BY_ACTION["hold"], "waiting", None)["statusReason"] == {"text": "waiting"}


def test_the_referral_transaction() -> None:
    """(The survey's answers: test_voice_parts.)"""
    bundle = transaction(
        patient="Patient/p",
        requester="Organization/clinic",
        category="food-insecurity",
        service_url="http://d/fhir/HealthcareService/h",
        organization_url="http://d/fhir/Organization/o",
        organization_name="Food bank",
        note="call after 3pm",
    )
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Consent", "ServiceRequest", "Task"]
    sr, task_out = bundle["entry"][1]["resource"], bundle["entry"][2]["resource"]
    assert sr["supportingInfo"] == [{"reference": bundle["entry"][0]["fullUrl"]}]
    assert task_out["focus"] == {"reference": bundle["entry"][1]["fullUrl"]}
    assert task_out["owner"]["reference"] == "http://d/fhir/Organization/o"


def test_timeline_has_one_step_per_status_change() -> None:
    def v(n: int, status: str, reason: str = "") -> dict:
        out: dict = {
            "status": status,
            "meta": {"versionId": str(n), "lastUpdated": f"2026-12-0{n}T10:00:00Z"},
        }
        if reason:
            out["statusReason"] = {"text": reason}
        return out

    steps = timeline(
        [v(3, "on-hold", "docs"), v(1, "requested"), v(2, "accepted"), v(4, "on-hold", "docs")]
    )
    assert [s["status"] for s in steps] == ["requested", "accepted", "on-hold"]
    assert steps[2]["reason"] == "docs" and steps[0]["when"] == "2026-12-01 10:00"


async def test_every_form_post_is_refused_without_its_csrf_token() -> None:
    """Each POST route of the app, sent what another site could make a browser send (the
    cookies, no token): 403, before any service is called (none runs here)."""
    settings = Settings(
        referral_url="http://127.0.0.1:9/fhir",
        directory_url="http://127.0.0.1:9/fhir",
        auth_url="http://127.0.0.1:9",
        session_secret="s",
        link_secret="l",
        cookie_secure=False,
    )
    app = create_app(settings)
    modules = (home, status, signin, inbox, clinician, worklist)
    posts = [
        str(getattr(r, "path", ""))
        for m in modules
        for r in m.router.routes
        if "POST" in (getattr(r, "methods", None) or set())
    ]
    assert len(posts) >= 5
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await http.get("/")  # the CSRF cookie
            assert http.cookies.get("web_csrf")
            for path in posts:
                url = path.replace("{task_id}", "t1").replace("{service_id}", "s1")
                r = await http.post(url, data={"action": "accept", "consent": "yes"})
                assert r.status_code == 403, (url, r.status_code)
                assert "Traceback" not in r.text


def test_map_tile_origin_for_the_csp() -> None:
    from web.app import tile_origin

    assert tile_origin("") == ""
    assert (
        tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    )
    assert tile_origin("http://127.0.0.1:9000/{z}/{x}/{y}.png") == "http://127.0.0.1:9000"
    assert tile_origin("javascript:alert(1)") == ""
