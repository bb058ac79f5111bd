"""Per-CBO counts of the patient-voice answers: responses, and for each question how many gave
each answer (zeros included), for the referrals the caller may see (``measures.access``).

Small cells are hidden as the loop metrics hide them (``measures.suppress.hidden``: 1 to
``min_cell - 1``); and when exactly one answer of a question is hidden, the next smallest
non-zero one is hidden too, so it cannot be recovered by subtracting the others from the
number of responses."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from referral_api.measures.compute import Scope
from referral_api.measures.suppress import hidden
from referral_api.voice.projection import COUNTED
from referral_api.voice.questionnaire import ITEMS
from referral_api.voice.tables import voice_answers, voice_responses

V, A = voice_responses.c, voice_answers.c


def choices(link_id: str) -> list[str]:
    kind, _, _, _, options = ITEMS[link_id]
    return ["true", "false"] if kind == "boolean" else [code for code, _, _ in options]


@dataclass
class OrgFigures:
    """Counts (None: suppressed) of one CBO: responses, and {linkId: {answer: count}}."""

    responses: int | None
    answers: dict[str, dict[str, int | None]] = field(default_factory=dict)


def _scoped(
    owner: ColumnElement[str | None], requester: ColumnElement[str | None], scope: Scope
) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if scope.owner is not None:
        parts.append(owner == scope.owner)
    if scope.requester is not None:
        parts.append(requester == scope.requester)
    return and_(true(), *parts)


async def count(conn: AsyncConnection, scope: Scope) -> dict[str | None, OrgFigures]:
    """Raw counts per CBO (no suppression)."""
    responses = (
        select(V.owner_org, func.count())
        .where(V.status.in_(sorted(COUNTED)), _scoped(V.owner_org, V.requester_org, scope))
        .group_by(V.owner_org)
    )
    out = {
        org: OrgFigures(n, {link: dict.fromkeys(choices(link), 0) for link in ITEMS})
        for org, n in (await conn.execute(responses)).all()
    }
    answers = (
        select(A.owner_org, A.link_id, A.answer, func.count())
        .where(_scoped(A.owner_org, A.requester_org, scope))
        .group_by(A.owner_org, A.link_id, A.answer)
    )
    for org, link_id, answer, n in (await conn.execute(answers)).all():
        cells = out.get(org)
        if cells is not None and link_id in cells.answers and answer in cells.answers[link_id]:
            cells.answers[link_id][answer] = n
    return out


def _suppress_item(cells: dict[str, int | None], min_cell: int) -> dict[str, int | None]:
    shown = {k: (None if hidden(v, min_cell) else v) for k, v in cells.items()}
    if sum(v is None for v in shown.values()) == 1:
        rest = [(v, k) for k, v in shown.items() if v]
        if rest:
            shown[min(rest)[1]] = None
    return shown


def suppress(figures: dict[str | None, OrgFigures], min_cell: int) -> dict[str | None, OrgFigures]:
    return {
        org: OrgFigures(
            None if hidden(f.responses, min_cell) else f.responses,
            {link: _suppress_item(cells, min_cell) for link, cells in f.answers.items()},
        )
        for org, f in figures.items()
    }
