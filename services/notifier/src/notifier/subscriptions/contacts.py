"""The email and sms endpoints of a Subscription, refused when written if they could not be sent
to safely: a ``mailto:`` must name one plain address and a ``tel:`` one international number,
with no control character in them, percent-encoded or not (a CR/LF in an address becomes a new
mail header or SMTP command; one in a number becomes a new form field)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from closedloop import errors

from notifier.channels.email import address
from notifier.channels.sms import phone

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_contact(
    channel: str, endpoint: str, where: str = "Subscription.channel.endpoint"
) -> None:
    """400 (``where``) for an email or sms endpoint the channel could not send to; other channels
    pass. The endpoint itself is not echoed: it is personal data."""
    if channel not in ("email", "sms"):
        return
    if _CONTROL.search(endpoint) or _CONTROL.search(unquote(endpoint)):
        raise errors.invalid(
            f"The {channel} endpoint contains control characters", (where,), cl_code="CL-8405"
        )
    scheme = "mailto:" if channel == "email" else "tel:"
    if not endpoint.lower().startswith(scheme):
        raise errors.invalid(
            f"An {channel} channel needs a {scheme} endpoint", (where,), cl_code="CL-8405"
        )
    try:
        if channel == "email":
            address(endpoint)
        else:
            phone(endpoint)
    except ValueError as exc:
        raise errors.invalid(
            f"The {channel} endpoint is not usable: {exc}", (where,), cl_code="CL-8405"
        ) from None
