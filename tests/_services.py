"""The referral pipeline of the end-to-end tests as real processes on PostgreSQL: directory-api
(optional), referral-api replicas sending their events to notifier replicas, each service on a
database of its own shared by its replicas, wired as ``make run`` wires them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from closedloop.testing import free_port, postgres_database, running_service


@dataclass
class Pipeline:
    """The running services' base URLs; ``stop_notifier``/``start_notifier`` restart a notifier
    replica on its port and database (the referral-apis keep sending to that port)."""

    directory: str | None
    referrals: list[str]
    notifiers: list[str]
    notifier_ports: list[int]
    notifier_db: str
    notifier_env: dict[str, str]
    _running: dict[int, AbstractAsyncContextManager[str]] = field(default_factory=dict)

    @property
    def referral(self) -> str:
        return self.referrals[0]

    @property
    def notifier(self) -> str:
        return self.notifiers[0]

    async def start_notifier(self, index: int = 0) -> str:
        ctx = running_service(
            "notifier",
            "NOTIFIER_",
            self.notifier_db,
            self.notifier_env,
            port=self.notifier_ports[index],
        )
        self.notifiers[index] = await ctx.__aenter__()
        self._running[index] = ctx
        return self.notifiers[index]

    async def stop_notifier(self, index: int = 0) -> None:
        """Stop the replica (if it is running)."""
        ctx = self._running.pop(index, None)
        if ctx is not None:
            await ctx.__aexit__(None, None, None)


@asynccontextmanager
async def referral_pipeline(
    postgres_admin_url: str,
    *,
    events_token: str,
    with_directory: bool = True,
    replicas: int = 1,
    common_env: dict[str, str] | None = None,
    directory_env: dict[str, str] | None = None,
    referral_env: dict[str, str] | None = None,
    notifier_env: dict[str, str] | None = None,
) -> AsyncIterator[Pipeline]:
    """Start the pipeline; referral-api replica i sends its events to notifier replica i, every
    notifier reads patients from the first referral-api. ``common_env`` goes to every process."""
    common = common_env or {}
    async with AsyncExitStack() as stack:
        dbs = [
            await stack.enter_async_context(postgres_database(postgres_admin_url))
            for _ in range(3 if with_directory else 2)
        ]
        directory = None
        if with_directory:
            directory = await stack.enter_async_context(
                running_service(
                    "directory_api", "DIRECTORY_API_", dbs[0], {**common, **(directory_env or {})}
                )
            )
        referral_db, notifier_db = dbs[-2], dbs[-1]
        ports = [free_port() for _ in range(replicas)]
        referrals = []
        for port in ports:
            env = {
                **common,
                "REFERRAL_API_EVENT_SINK_URL": f"http://127.0.0.1:{port}/events",
                "REFERRAL_API_EVENT_SINK_TOKEN": events_token,
                **(referral_env or {}),
            }
            if directory is not None:
                env.setdefault("REFERRAL_API_DIRECTORY_URL", f"{directory}/fhir")
            referrals.append(
                await stack.enter_async_context(
                    running_service("referral_api", "REFERRAL_API_", referral_db, env)
                )
            )
        pipeline = Pipeline(
            directory=directory,
            referrals=referrals,
            notifiers=["" for _ in ports],
            notifier_ports=ports,
            notifier_db=notifier_db,
            notifier_env={
                **common,
                "NOTIFIER_EVENTS_TOKEN": events_token,
                "NOTIFIER_REFERRAL_URL": f"{referrals[0]}/fhir",
                **(notifier_env or {}),
            },
        )
        try:
            for i in range(replicas):
                await pipeline.start_notifier(i)
            yield pipeline
        finally:
            for i in list(pipeline._running):
                await pipeline.stop_notifier(i)
