"""The follow-up's settings: the stall limits are the loop metrics' (one meaning of "stalled"
for the figures and for the worklist); escalation and the sweep interval are its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class FollowupSettings:
    stall_days: int = 7
    stall_days_by_category: Mapping[str, int] = field(default_factory=dict)
    escalate_days: int = 3  # after the referral became stalled
    sweep_seconds: float = 900.0  # 0: no periodic sweep (the operation still works)

    def stall_days_for(self, category: str | None) -> int:
        return self.stall_days_by_category.get(category or "", self.stall_days)
