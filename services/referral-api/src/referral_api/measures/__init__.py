"""Loop metrics: how referrals fare (sent, accepted, declined, completed, cancelled, stalled,
closure rate, times to answer and to close), from the ``referral_facts`` projection, as a FHIR
MeasureReport, CSV or an SVG chart, for what the caller may see, small cells suppressed."""

__all__ = [
    "access",
    "backfill",
    "chart",
    "commands",
    "compute",
    "definition",
    "facts",
    "operation",
    "projection",
    "publish",
    "report",
    "settings",
    "suppress",
    "table",
    "tables",
]
