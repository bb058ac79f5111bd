"""The patient's voice: after a referral is completed, the patient is asked (through the
notifier's completion message) how it went, with a short Questionnaire referral-api publishes;
the answers are QuestionnaireResponses checked against it, and CBOs' aggregates are offered with
small cells suppressed.

- ``questionnaire``: the published Questionnaire (English, with Spanish translations);
- ``answers``: checking a QuestionnaireResponse against a Questionnaire (422 otherwise);
- ``tables`` and ``projection``: the answers kept per response and CBO, in the same
  transaction as the QuestionnaireResponse;
- ``aggregate`` and ``operation``: ``Questionnaire/patient-voice/$aggregate``, per CBO, as
  Parameters or CSV, for what the caller may see.
"""

__all__ = [
    "aggregate",
    "answers",
    "operation",
    "projection",
    "publish",
    "questionnaire",
    "report",
    "tables",
]
