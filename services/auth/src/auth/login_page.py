"""The HTML the authorization endpoint shows: the sign-in form and the error page, in English
and Spanish (chosen by ``ui_locales``/``lang``, else ``Accept-Language``).

Accessible by construction: ``lang`` on the page, a label for every field, errors in a
``role="alert"`` region the fields point to with ``aria-describedby``, nothing but HTML (no
script). Every value is escaped."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

LANGUAGES = ("en", "es")
TEXT = {
    "en": {
        "title": "Sign in",
        "asks": "{app} asks to use your account. It will be allowed to:",
        "username": "Username",
        "password": "Password",
        "submit": "Sign in",
        "bad_login": "The username or password is wrong, or the account is disabled.",
        "throttled": "Too many failed attempts. Wait a few minutes and try again.",
        "expired": "This form expired. Go back to the app and start again.",
        "error_title": "The sign-in request cannot be completed",
        "unknown_client": "The app is not registered here, or it is disabled.",
        "bad_redirect": "The app's return address (redirect_uri) is not registered for it.",
        "bad_request": "The request is malformed: a parameter is missing or repeated.",
        "external": "Sign in with {name}",
        "or": "Or with a username and password here:",
        "external_failed": (
            "The sign-in at the external identity provider could not be trusted or completed. "
            "Go back to the app and start again."
        ),
        "external_unavailable": (
            "The external identity provider cannot be reached now. Try again later."
        ),
        "unknown_subject": (
            "Your account at the external identity provider is not linked to an account here. "
            "Ask an administrator to add you."
        ),
        "user_disabled": "Your account here is disabled.",
        "bad_state": (
            "This sign-in expired, was already used, or was started in another browser. "
            "Go back to the app and start again."
        ),
    },
    "es": {
        "title": "Iniciar sesión",
        "asks": "{app} solicita usar su cuenta. Se le permitirá:",
        "username": "Nombre de usuario",
        "password": "Contraseña",
        "submit": "Iniciar sesión",
        "bad_login": (
            "El nombre de usuario o la contraseña no son correctos, o la cuenta está desactivada."
        ),
        "throttled": "Demasiados intentos fallidos. Espere unos minutos y vuelva a intentarlo.",
        "expired": "Este formulario caducó. Vuelva a la aplicación y empiece de nuevo.",
        "error_title": "No se puede completar la solicitud de inicio de sesión",
        "unknown_client": "La aplicación no está registrada aquí, o está desactivada.",
        "bad_redirect": (
            "La dirección de retorno de la aplicación (redirect_uri) no está registrada para ella."
        ),
        "bad_request": "La solicitud está mal formada: falta un parámetro o está repetido.",
        "external": "Iniciar sesión con {name}",
        "or": "O con nombre de usuario y contraseña aquí:",
        "external_failed": (
            "No se pudo confiar en el inicio de sesión del proveedor de identidad externo, o no "
            "se completó. Vuelva a la aplicación y empiece de nuevo."
        ),
        "external_unavailable": (
            "No se puede contactar ahora con el proveedor de identidad externo. Inténtelo más "
            "tarde."
        ),
        "unknown_subject": (
            "Su cuenta del proveedor de identidad externo no está vinculada a ninguna cuenta "
            "aquí. Pida a un administrador que le dé de alta."
        ),
        "user_disabled": "Su cuenta aquí está desactivada.",
        "bad_state": (
            "Este inicio de sesión caducó, ya se usó o se inició en otro navegador. Vuelva a la "
            "aplicación y empiece de nuevo."
        ),
    },
}
# what an app's scopes allow, in words (the scope itself is shown for anything else)
SCOPE_WORDS = {
    "en": {
        "openid": "know who you are",
        "fhirUser": "know your FHIR user record",
        "launch": "open in the context the EHR launched it in",
        "launch/patient": "know the patient in context",
        "offline_access": "keep access while you are away",
        "online_access": "keep access while you are signed in",
    },
    "es": {
        "openid": "saber quién es usted",
        "fhirUser": "conocer su registro de usuario FHIR",
        "launch": "abrirse en el contexto en que la lanzó la historia clínica",
        "launch/patient": "conocer al paciente en contexto",
        "offline_access": "mantener el acceso mientras usted no está",
        "online_access": "mantener el acceso mientras su sesión esté abierta",
    },
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}label{display:block;margin-top:1rem;font-weight:600}"
    "input{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box}"
    "button{margin-top:1.5rem;font-size:1rem;padding:.6rem 1.2rem}"
    "[role=alert]{border:2px solid #b00020;padding:.5rem 1rem;color:#b00020}"
    ":focus{outline:3px solid #1a5fb4;outline-offset:2px}"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # no form-action: after the post the browser follows a redirect to the app
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def choose_language(ui_locales: str | None, accept_language: str | None) -> str:
    """The first of ``ui_locales`` (space-separated, OpenID Connect) we speak, else the best
    ``Accept-Language`` entry by q, else English."""
    for tag in (ui_locales or "").split():
        base = tag.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        pieces = part.strip().split(";")
        base = pieces[0].strip().split("-")[0].lower()
        q = 1.0
        for p in pieces[1:]:
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if base in LANGUAGES and q > 0:
            ranked.append((-q, i, base))
    return min(ranked)[2] if ranked else "en"


def _page(lang: str, title: str, body: str, status: int) -> HTMLResponse:
    html = (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def login_page(
    lang: str,
    *,
    app_name: str,
    scopes: list[str],
    hidden: dict[str, str],
    csrf: str,
    external: str | None = None,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    t = TEXT[lang]
    words = SCOPE_WORDS[lang]
    items = "".join(f"<li>{escape(words.get(s, s))}</li>" for s in scopes)
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items()
    )
    described = ' aria-describedby="error" aria-invalid="true"' if error else ""
    alert = f'<div id="error" role="alert"><p>{escape(t[error])}</p></div>' if error else ""
    token = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    elsewhere = (
        '<form method="post" action="/authorize/external">'
        f'{fields}{token}<button type="submit">{escape(t["external"].format(name=external))}'
        f"</button></form><p>{escape(t['or'])}</p>"
        if external
        else ""
    )
    body = (
        f"<h1>{escape(t['title'])}</h1>{alert}"
        f"<p>{escape(t['asks'].format(app=app_name))}</p><ul>{items}</ul>{elsewhere}"
        '<form method="post" action="/authorize">'
        f"{fields}{token}"
        f'<label for="username">{escape(t["username"])}</label>'
        '<input id="username" name="username" autocomplete="username" required '
        f'maxlength="200" value="{escape(username)}"{described}>'
        f'<label for="password">{escape(t["password"])}</label>'
        '<input id="password" name="password" type="password" '
        f'autocomplete="current-password" required{described}>'
        f'<button type="submit">{escape(t["submit"])}</button></form>'
    )
    return _page(lang, t["title"], body, status)


def error_page(lang: str, error: str, detail: str = "", status: int = 400) -> HTMLResponse:
    """For a request that cannot be sent back to the app (unknown client, unregistered
    redirect URI, an expired form): said here, never redirected. ``error`` is a TEXT key;
    ``detail`` the technical reason, for the app's developer."""
    t = TEXT[lang]
    more = f"<p><code>{escape(detail)}</code></p>" if detail else ""
    body = (
        f"<h1>{escape(t['error_title'])}</h1>"
        f'<div role="alert"><p>{escape(t[error])}</p>{more}</div>'
    )
    return _page(lang, t["error_title"], body, status)
