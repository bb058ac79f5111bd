"""Follow-up of stalled referrals: a referral Task the CBO has not answered within the stall
limit (per service category, the loop metrics' own) gets a follow-up Task for the requesting
organization's case managers; still unanswered some days later, the follow-up is escalated;
once the CBO answers (or the referral ends), the follow-up closes itself.

- ``tables``: ``referral_followups``, one row per stalled referral: the claim that makes each
  step happen once, whichever replica sweeps;
- ``task``: the follow-up Task as FHIR;
- ``sweep``: finds stalled and overdue referrals and acts on them (periodically in
  ``worker``, on demand through ``$sweep-stalled`` in ``operation``);
- ``closing``: the before-commit rule completing a follow-up when its referral is answered.
"""

__all__ = ["closing", "operation", "settings", "sweep", "tables", "task", "worker"]
