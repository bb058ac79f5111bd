"""What happens when a Subscription is written: it is checked (400 for anything the server
cannot honour, a channel it has no settings for included), a new subscription on a channel with
a handshake (rest-hook) starts ``requested`` (the handshake decides ``active`` or ``error``),
others (email, sms) start ``active``, a signing secret is moved out of the stored resource,
and the delivery state row is written in the same transaction (a client's write also clears
the backoff and the set-aside filters of an earlier failure). The delivery worker's own status
writes are not checked again."""

from __future__ import annotations

from typing import Any

from closedloop.context import SYSTEM, RequestContext
from closedloop.errors import Issue
from closedloop.fhir.instant import now_us
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.hooks import Change, HookPoint
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from notifier.channels.registry import CHANNELS, ChannelSetup
from notifier.subscriptions.spec import SECRET_EXT, check_channel_ready, read_spec
from notifier.subscriptions.ssrf import EndpointPolicy
from notifier.subscriptions.tables import subscription_state


def _take_secret(resource: dict[str, Any]) -> str | None:
    secret = None
    kept = []
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == SECRET_EXT:
            secret = str(ext.get("valueString") or "") or None
        else:
            kept.append(ext)
    if secret is not None:
        if kept:
            resource["extension"] = kept
        else:
            resource.pop("extension", None)
    return secret


class SubscriptionLifecycle:
    def __init__(
        self, server: FhirServer, endpoints: EndpointPolicy, channels: ChannelSetup
    ) -> None:
        self.server = server
        self.endpoints = endpoints
        self.channels = channels

    def install(self) -> None:
        hooks = self.server.hooks
        hooks.register(HookPoint.VALIDATE, self.validate)
        hooks.register(HookPoint.BEFORE_CREATE, self.before_write)
        hooks.register(HookPoint.BEFORE_UPDATE, self.before_write)
        hooks.register(HookPoint.BEFORE_COMMIT, self.write_state)

    async def validate(
        self,
        ctx: RequestContext,
        resource_type: str,
        resource: dict[str, Any],
        _report: list[Issue],
    ) -> None:
        if resource_type == "Subscription" and ctx.subject != SYSTEM.subject:
            spec = read_spec(resource, self.server.search, self.endpoints)
            if resource.get("status") != "off":  # turning one off always works
                check_channel_ready(spec.channel, self.channels)

    async def before_write(self, ctx: RequestContext, change: Change) -> None:
        if change.resource_type != "Subscription" or change.resource is None:
            return
        if ctx.subject == SYSTEM.subject:
            change.notes["system"] = True  # the delivery worker reporting a status
            return
        sub = change.resource
        change.notes["secret"] = _take_secret(sub)
        spec = read_spec(sub, self.server.search, self.endpoints)
        previous = (change.previous or {}).get("status")
        wanted = sub.get("status")
        if wanted == "off":
            status = "off"
        elif not CHANNELS[spec.channel].handshake or (previous == "active" and wanted == "active"):
            status = "active"
        else:
            status = "requested"  # new, or a client asking to (re)start: handshake first
        sub["status"] = status
        change.notes["spec"] = spec

    async def write_state(self, _ctx: RequestContext, uow: UnitOfWork) -> None:
        for change in uow.changes:
            if change.resource_type != "Subscription" or change.notes.get("system"):
                continue
            await self._write_one(uow, change)

    async def _write_one(self, uow: UnitOfWork, change: Change) -> None:
        state = subscription_state.c
        now = now_us()
        if change.resource is None:  # deleted: stop, keep the event log
            await uow.conn.execute(
                update(subscription_state)
                .where(state.subscription_id == change.resource_id)
                .values(status="off")
            )
            return
        spec = change.notes["spec"]
        values = {
            "topic": spec.topic.url,
            "criteria": "\n".join(spec.filters),
            "status": change.resource["status"],
            "next_due_at": now,
            "error": None,
            "failures": 0,
            "filters_failed": False,
        }
        if change.notes.get("secret") is not None:
            values["secret"] = change.notes["secret"]
        ins = pg_insert if self.server.db.postgres else sqlite_insert
        ctx = uow.ctx
        stmt = ins(subscription_state).values(
            subscription_id=change.resource_id,
            events_count=0,
            last_sent_at=now,
            lease_expires=0,
            # the creator owns it for good: a later update (by the owner or an admin) keeps it
            owner_subject=ctx.subject,
            owner_role=ctx.role,
            owner_organization=ctx.organization,
            **values,
        )
        await uow.conn.execute(
            stmt.on_conflict_do_update(index_elements=["subscription_id"], set_=values)
        )
