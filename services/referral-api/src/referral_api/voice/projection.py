"""Keeps ``voice_responses``/``voice_answers`` in step with the QuestionnaireResponses to the
patient-voice Questionnaire, before commit: the response must be about a completed referral
Task stored here (422 otherwise; its subject, if given, the Task's patient), and a referral is
answered once (409 for a second response: update the first). Responses that are not completed
or amended are not counted."""

from __future__ import annotations

from typing import Any

import orjson
from closedloop import errors
from closedloop.errors import FhirError
from closedloop.fhir.instant import parse_instant
from closedloop.fhir.storage.repository import Repository, UnitOfWork
from sqlalchemy import delete, insert, select

from referral_api.measures.facts import local_ref
from referral_api.profiles import patient_voice, task_referral
from referral_api.voice.tables import voice_answers, voice_responses

COUNTED = frozenset({"completed", "amended"})
V = voice_responses.c


async def _referral(repo: Repository, uow: UnitOfWork, task_id: str) -> dict[str, Any]:
    try:
        stored = await repo.read("Task", task_id, uow.conn)
    except FhirError:
        raise errors.unprocessable(
            f"Task/{task_id} is not a referral stored here",
            ("QuestionnaireResponse.basedOn",),
            cl_code="CL-6451",
        ) from None
    task = orjson.loads(stored.content or "{}")
    if not task_referral.applies(task) or task.get("status") != "completed":
        raise errors.unprocessable(
            f"Task/{task_id} is not a completed referral: the patient is asked after completion",
            ("QuestionnaireResponse.basedOn",),
            cl_code="CL-6452",
        )
    return dict(task)


def _answers(response: dict[str, Any]) -> set[tuple[str, str]]:
    out = set()
    for item in response.get("item") or []:
        for answer in item.get("answer") or []:
            if isinstance(answer.get("valueBoolean"), bool):
                out.add((str(item["linkId"]), "true" if answer["valueBoolean"] else "false"))
            elif isinstance(answer.get("valueCoding"), dict):
                out.add((str(item["linkId"]), str(answer["valueCoding"].get("code"))[:64]))
    return out


async def _record(repo: Repository, uow: UnitOfWork, rid: str, response: dict[str, Any]) -> None:
    task_id = patient_voice.task_of(response)
    assert task_id is not None  # the profile requires it
    task = await _referral(repo, uow, task_id)
    subject = local_ref(response.get("subject"))
    if subject is not None and subject != local_ref(task.get("for")):
        raise errors.unprocessable(
            "The response's subject is not the referral's patient",
            ("QuestionnaireResponse.subject",),
            cl_code="CL-6453",
        )
    other = (
        await uow.conn.execute(
            select(V.response_id).where(V.task_id == task_id, V.response_id != rid)
        )
    ).scalar()
    if other is not None:
        raise errors.conflict(
            f"Task/{task_id} already has the patient's answers "
            f"(QuestionnaireResponse/{other}): update that one",
            cl_code="CL-6454",
        )
    owner, requester = local_ref(task.get("owner")), local_ref(task.get("requester"))
    authored = response.get("authored")
    status = str(response.get("status"))[:16]
    await uow.conn.execute(
        insert(voice_responses).values(
            response_id=rid,
            task_id=task_id,
            status=status,
            owner_org=owner,
            requester_org=requester,
            authored_at=parse_instant(authored) if isinstance(authored, str) else None,
        )
    )
    if status not in COUNTED:
        return
    rows = [
        {
            "response_id": rid,
            "link_id": link_id,
            "answer": answer,
            "owner_org": owner,
            "requester_org": requester,
        }
        for link_id, answer in sorted(_answers(response))
    ]
    if rows:
        await uow.conn.execute(insert(voice_answers), rows)


async def project_voice(repo: Repository, uow: UnitOfWork) -> None:
    for change in uow.changes:
        if change.resource_type != "QuestionnaireResponse":
            continue
        rid = change.resource_id
        if change.version_id > 1:  # a create has nothing to replace
            await uow.conn.execute(delete(voice_answers).where(voice_answers.c.response_id == rid))
            await uow.conn.execute(delete(voice_responses).where(V.response_id == rid))
        if change.resource is not None and patient_voice.applies(change.resource):
            await _record(repo, uow, rid, change.resource)
