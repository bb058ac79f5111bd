"""Signed, expiring links to a referral's status page: the notifier writes them into the
patient's messages, the web app checks them before showing anything. One module, so the two
always agree on the format.

A link is ``<app url>/referrals/<task id>?exp=<unix seconds>&sig=<signature>``; the signature
is HMAC-SHA256 cut to 128 bits (base64url, unpadded: 22 characters, so a text message still
has room for the link) over ``referral-status|<task id>|<exp>`` with a secret
both services read from their environment. Anyone holding the link may read the status until
``exp``: it names no patient, and the page shows only what the patient was told already.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

PURPOSE = "referral-status"


def _signature(secret: str, task_id: str, expires: int) -> str:
    message = f"{PURPOSE}|{task_id}|{expires}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def status_link(
    app_url: str, task_id: str, secret: str, lifetime: float, now: float | None = None
) -> str:
    """The signed link to Task ``task_id``'s status page, good for ``lifetime`` seconds."""
    expires = int((time.time() if now is None else now) + lifetime)
    query = urlencode({"exp": expires, "sig": _signature(secret, task_id, expires)})
    return f"{app_url.rstrip('/')}/referrals/{task_id}?{query}"


def check(
    task_id: str, exp: str | None, sig: str | None, secret: str, now: float | None = None
) -> str:
    """``"ok"``, ``"expired"`` (a genuine link past its time) or ``"invalid"`` (tampered,
    truncated, or signed with another secret)."""
    if not exp or not sig or not exp.isdigit() or len(exp) > 12:
        return "invalid"
    if not hmac.compare_digest(_signature(secret, task_id, int(exp)), sig):
        return "invalid"
    if int(exp) < (time.time() if now is None else now):
        return "expired"
    return "ok"
