"""SDOH Clinical Care IG profile rules, checked on every write (and by ``$validate``).

One module per profile. Each exposes ``applies(resource) -> bool`` and
``check(resource) -> list[Issue]``; ``PROFILES`` lists them per resource type. The
ServiceRequest and the referral/patient Task rules always apply (they define the loop); the
Consent, Procedure, Condition and Goal rules apply when ``meta.profile`` names the SDOHCC
profile, so ordinary clinical resources are not held to SDOH-specific rules; the patient-voice
rules apply to responses to that Questionnaire.
"""

from __future__ import annotations

from referral_api.profiles import (
    condition,
    consent,
    goal,
    patient_voice,
    procedure,
    service_request,
    task_patient,
    task_referral,
)

PROFILES = {
    "ServiceRequest": [service_request],
    "Task": [task_referral, task_patient],
    "Consent": [consent],
    "Procedure": [procedure],
    "Condition": [condition],
    "Goal": [goal],
    "QuestionnaireResponse": [patient_voice],
}

__all__ = ["PROFILES"]
