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

# Follow-up of a referral the CBO has not answered (referral-api's follow-up Tasks): for the
# requesting organization's case managers; the program is not named (the follow-up Task's
# owner is the requesting organization, not the CBO).
CATALOG.update(
    {
        ("en", "referral-stalled", "clinician"): (
            "Referral needs follow-up",
            "A referral you sent has had no answer from the organization. Please follow up "
            "with them or refer the patient elsewhere.\n{link}",
            "A referral you sent has had no answer. Please follow up. {link}",
        ),
        ("en", "referral-escalated", "clinician"): (
            "Urgent: referral still unanswered",
            "A referral you sent still has no answer from the organization, days after it "
            "was flagged for follow-up. It is now urgent.\n{link}",
            "Urgent: a referral you sent still has no answer. {link}",
        ),
        ("en", "referral-stalled", "cbo"): (
            "Referral waiting for your answer",
            "A referral sent to you is waiting for your answer. Please accept or decline "
            "it.\n{link}",
            "A referral is waiting for your answer. {link}",
        ),
        ("en", "referral-escalated", "cbo"): (
            "Urgent: referral waiting for your answer",
            "A referral sent to you has waited a long time for your answer. Please accept or "
            "decline it now.\n{link}",
            "Urgent: a referral is waiting for your answer. {link}",
        ),
        ("en", "referral-stalled", "patient"): (
            "We are checking on your referral",
            "Your care team is checking on your referral.\n{link}",
            "Your care team is checking on your referral. {link}",
        ),
        ("en", "referral-escalated", "patient"): (
            "We are checking on your referral",
            "Your care team is following up on your referral.\n{link}",
            "Your care team is following up on your referral. {link}",
        ),
        ("es", "referral-stalled", "clinician"): (
            "La remisión necesita seguimiento",
            "Una remisión que usted envió no ha recibido respuesta de la organización. Haga "
            "seguimiento o remita al paciente a otro lugar.\n{link}",
            "Una remisión que envió no tiene respuesta. Haga seguimiento. {link}",
        ),
        ("es", "referral-escalated", "clinician"): (
            "Urgente: remisión aún sin respuesta",
            "Una remisión que usted envió sigue sin respuesta de la organización, días después "
            "de marcarse para seguimiento. Ahora es urgente.\n{link}",
            "Urgente: una remisión que envió sigue sin respuesta. {link}",
        ),
        ("es", "referral-stalled", "cbo"): (
            "Remisión en espera de su respuesta",
            "Una remisión enviada a ustedes espera su respuesta. Acéptela o recházela.\n{link}",
            "Una remisión espera su respuesta. {link}",
        ),
        ("es", "referral-escalated", "cbo"): (
            "Urgente: remisión en espera de su respuesta",
            "Una remisión enviada a ustedes lleva mucho tiempo esperando su respuesta. "
            "Acéptela o recházela ahora.\n{link}",
            "Urgente: una remisión espera su respuesta. {link}",
        ),
        ("es", "referral-stalled", "patient"): (
            "Estamos revisando su remisión",
            "Su equipo de atención está revisando su remisión.\n{link}",
            "Su equipo de atención está revisando su remisión. {link}",
        ),
        ("es", "referral-escalated", "patient"): (
            "Estamos revisando su remisión",
            "Su equipo de atención está dando seguimiento a su remisión.\n{link}",
            "Su equipo de atención da seguimiento a su remisión. {link}",
        ),
    }
)

# After a completed referral, the patient is asked how it went (referral-api's published
# "patient voice" Questionnaire): a line added to the email, and the SMS when it fits.
FEEDBACK: dict[str, tuple[str, str]] = {
    "en": (
        "Tell us how it went: {feedback}",
        "Your referral is complete. Tell us how it went: {feedback}",
    ),
    "es": (
        "Cuéntenos cómo le fue: {feedback}",
        "Su remisión está completa. Cuéntenos cómo le fue: {feedback}",
    ),
}

NO_PROGRAM = {"en": "the organization", "es": "la organización"}
