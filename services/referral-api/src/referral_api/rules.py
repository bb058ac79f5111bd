"""Plugs referral-api's rules into the shared engine's hooks, in one place.

Order matters on ``before_commit``: the loop is closed (the ServiceRequest follows its Task)
and an answered referral's follow-up closed before the metrics' projection and the outbox see
the changes, so those changes have their events too.
"""

from __future__ import annotations

from typing import Any

from closedloop.auth.roles import UNRESTRICTED_ROLES
from closedloop.context import RequestContext
from closedloop.errors import FhirError, Issue
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.hooks import Change, HookPoint

from referral_api import access
from referral_api.followup.closing import close_followups
from referral_api.measures.projection import project
from referral_api.outbox.writer import write_events
from referral_api.profiles import PROFILES, task_patient, task_referral
from referral_api.targets import DirectoryTargets
from referral_api.voice.projection import project_voice
from referral_api.workflow import task_states
from referral_api.workflow.loop_closing import close_loop


async def check_profiles(
    _ctx: RequestContext, resource_type: str, resource: dict[str, Any], _report: list[Issue]
) -> None:
    issues: list[Issue] = []
    for profile in PROFILES.get(resource_type, ()):
        if profile.applies(resource):
            issues += profile.check(resource)
    if issues:
        raise FhirError(422, issues)


def role_of(ctx: RequestContext, task: dict[str, Any]) -> set[str]:
    """The caller's roles on a Task, by its organization (set by the authorization layer); an
    unrestricted caller (admin, one of our services) may act as either party."""
    if ctx.role in UNRESTRICTED_ROLES:
        return {task_states.REQUESTER, task_states.OWNER}
    roles = set()
    for role, element in ((task_states.REQUESTER, "requester"), (task_states.OWNER, "owner")):
        ref = (task.get(element) or {}).get("reference")
        if (
            ctx.organization
            and ref
            and (ref == ctx.organization or ref.endswith("/" + ctx.organization))
        ):
            roles.add(role)
    return roles


def machine_of(task: dict[str, Any]) -> task_states.Machine | None:
    """The state machine a Task follows: referral (code fulfill), patient, or none."""
    if task_referral.applies(task):
        return task_states.REFERRAL
    if task_patient.applies(task):
        return task_states.PATIENT
    return None


async def enforce_task_states(ctx: RequestContext, change: Change) -> None:
    if change.resource_type != "Task" or change.previous is None or change.resource is None:
        return
    before, after = change.previous, change.resource
    machine = machine_of(before)
    if machine_of(after) is not machine:
        raise task_states.kind_changed(machine, machine_of(after))
    if machine is None:
        return
    old, new = str(before.get("status")), str(after.get("status"))
    task_states.check_move(old, new, machine.moves, machine.kind)
    task_states.check_actor(ctx, before, after, machine.actors, role_of)


async def enforce_task_start(ctx: RequestContext, change: Change) -> None:
    """Creation, conditional creation and re-creation (a PUT to a deleted id) pass the state
    machine too: a Task begins in a start status, and a deleted Task's id stays retired."""
    if change.resource_type != "Task" or change.resource is None:
        return
    if change.version_id > 1:  # a create whose history continues: the id was deleted
        raise task_states.retired_id(change.resource_id)
    machine = machine_of(change.resource)
    if machine is None:
        return
    task_states.check_start(str(change.resource.get("status")), machine.starts, machine.kind)
    task_states.check_creator(ctx, change.resource, machine.actors, role_of)


async def guard_task_delete(_ctx: RequestContext, change: Change) -> None:
    """A referral Task is deleted only while a draft (see ``workflow.task_states``)."""
    if change.resource_type != "Task" or change.previous is None:
        return
    machine = machine_of(change.previous)
    if machine is not None:
        status = str(change.previous.get("status"))
        task_states.check_delete(status, machine.deletable, machine.kind)


def install(server: FhirServer, targets: DirectoryTargets, *, require_consent: bool) -> None:
    hooks = server.hooks
    access.install(server, require_consent=require_consent)
    hooks.register(HookPoint.VALIDATE, check_profiles)
    hooks.register(HookPoint.BEFORE_CREATE, enforce_task_start)
    hooks.register(HookPoint.BEFORE_UPDATE, enforce_task_states)
    hooks.register(HookPoint.BEFORE_DELETE, guard_task_delete)
    hooks.register(HookPoint.BEFORE_TRANSACTION, targets.prefetch)
    hooks.register(HookPoint.BEFORE_CREATE, targets.check)
    hooks.register(HookPoint.BEFORE_UPDATE, targets.check)

    async def closing(_ctx: RequestContext, uow: UnitOfWork) -> None:
        await close_loop(server.repo, uow)

    hooks.register(HookPoint.BEFORE_COMMIT, closing)

    async def following_up(_ctx: RequestContext, uow: UnitOfWork) -> None:
        await close_followups(server.repo, uow)

    hooks.register(HookPoint.BEFORE_COMMIT, following_up)

    async def projecting(_ctx: RequestContext, uow: UnitOfWork) -> None:
        await project(server.repo, uow)

    hooks.register(HookPoint.BEFORE_COMMIT, projecting)

    async def voicing(_ctx: RequestContext, uow: UnitOfWork) -> None:
        await project_voice(server.repo, uow)

    hooks.register(HookPoint.BEFORE_COMMIT, voicing)
    hooks.register(HookPoint.BEFORE_COMMIT, write_events)
