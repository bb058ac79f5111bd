"""The message texts: (language, kind, audience) -> (subject, email text, sms text).

``{program}`` and ``{link}`` are filled in; a missing program reads as a neutral phrase. SMS
texts never name the program or the need (no clinical detail by text message).
"""

from __future__ import annotations

Entry = tuple[str, str, str]

CATALOG: dict[tuple[str, str, str], Entry] = {
    ("en", "referral-new", "cbo"): (
        "New referral for {program}",
        "A new referral has arrived for {program}. Please review it and accept or decline "
        "it.\n{link}",
        "You have a new referral to review. {link}",
    ),
    ("en", "referral-new", "patient"): (
        "Your referral was sent",
        "Your care team sent a referral to {program}. They will contact you.\n{link}",
        "Your care team sent a referral for you. {link}",
    ),
    ("en", "referral-new", "clinician"): (
        "Referral sent to {program}",
        "Your referral was delivered to {program}.\n{link}",
        "Your referral was delivered. {link}",
    ),
    ("en", "referral-accepted", "cbo"): (
        "Referral accepted",
        "The referral was accepted by {program}.\n{link}",
        "A referral was accepted. {link}",
    ),
    ("en", "referral-accepted", "patient"): (
        "Your referral was accepted",
        "Good news: {program} accepted your referral and will be in touch.\n{link}",
        "Update on your referral: it was accepted. {link}",
    ),
    ("en", "referral-accepted", "clinician"): (
        "Referral accepted by {program}",
        "{program} accepted your referral.\n{link}",
        "Your referral was accepted. {link}",
    ),
    ("en", "referral-declined", "cbo"): (
        "Referral declined",
        "The referral was declined.\n{link}",
        "A referral was declined. {link}",
    ),
    ("en", "referral-declined", "patient"): (
        "Update on your referral",
        "{program} could not take your referral. Your care team will help you find another "
        "option.\n{link}",
        "Update on your referral: it could not be accepted. Your care team will follow up. {link}",
    ),
    ("en", "referral-declined", "clinician"): (
        "Referral declined by {program}",
        "{program} declined your referral. You may refer the patient elsewhere.\n{link}",
        "Your referral was declined. {link}",
    ),
    ("en", "referral-completed", "cbo"): (
        "Referral completed",
        "The referral is complete.\n{link}",
        "A referral was completed. {link}",
    ),
    ("en", "referral-completed", "patient"): (
        "Your referral is complete",
        "{program} has completed the service you were referred for.\n{link}",
        "Update on your referral: it is complete. {link}",
    ),
    ("en", "referral-completed", "clinician"): (
        "Referral completed by {program}",
        "{program} completed the referral; the outcome is recorded.\n{link}",
        "Your referral was completed. {link}",
    ),
    ("es", "referral-new", "cbo"): (
        "Nueva remisión para {program}",
        "Ha llegado una nueva remisión para {program}. Revísela y acéptela o recházela.\n{link}",
        "Tiene una nueva remisión para revisar. {link}",
    ),
    ("es", "referral-new", "patient"): (
        "Su remisión fue enviada",
        "Su equipo de atención envió una remisión a {program}. Se comunicarán con usted.\n{link}",
        "Su equipo de atención envió una remisión para usted. {link}",
    ),
    ("es", "referral-new", "clinician"): (
        "Remisión enviada a {program}",
        "Su remisión fue entregada a {program}.\n{link}",
        "Su remisión fue entregada. {link}",
    ),
    ("es", "referral-accepted", "cbo"): (
        "Remisión aceptada",
        "{program} aceptó la remisión.\n{link}",
        "Se aceptó una remisión. {link}",
    ),
    ("es", "referral-accepted", "patient"): (
        "Su remisión fue aceptada",
        "Buenas noticias: {program} aceptó su remisión y se comunicará con usted.\n{link}",
        "Novedad sobre su remisión: fue aceptada. {link}",
    ),
    ("es", "referral-accepted", "clinician"): (
        "Remisión aceptada por {program}",
        "{program} aceptó su remisión.\n{link}",
        "Su remisión fue aceptada. {link}",
    ),
    ("es", "referral-declined", "cbo"): (
        "Remisión rechazada",
        "La remisión fue rechazada.\n{link}",
        "Se rechazó una remisión. {link}",
    ),
    ("es", "referral-declined", "patient"): (
        "Novedad sobre su remisión",
        "{program} no pudo aceptar su remisión. Su equipo de atención le ayudará a encontrar "
        "otra opción.\n{link}",
        "Novedad sobre su remisión: no pudo ser aceptada. Su equipo de atención le llamará. {link}",
    ),
    ("es", "referral-declined", "clinician"): (
        "Remisión rechazada por {program}",
        "{program} rechazó su remisión. Puede remitir al paciente a otro lugar.\n{link}",
        "Su remisión fue rechazada. {link}",
    ),
    ("es", "referral-completed", "cbo"): (
        "Remisión completada",
        "La remisión está completa.\n{link}",
        "Se completó una remisión. {link}",
    ),
    ("es", "referral-completed", "patient"): (
        "Su remisión está completa",
        "{program} completó el servicio para el que fue remitido.\n{link}",
        "Novedad sobre su remisión: está completa. {link}",
    ),
    ("es", "referral-completed", "clinician"): (
        "Remisión completada por {program}",
        "{program} completó la remisión; el resultado está registrado.\n{link}",
        "Su remisión fue completada. {link}",
    ),
}

NO_PROGRAM = {"en": "the organization", "es": "la organización"}
