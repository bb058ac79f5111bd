"""The periodic follow-up sweep, in every replica: which replica finds a referral first does
not matter, the sweep's claims make each step happen once (``followup.sweep``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from closedloop.fhir.server import FhirServer

from referral_api.followup.settings import FollowupSettings
from referral_api.followup.sweep import sweep

log = logging.getLogger("referral_api.followup")


class SweepWorker:
    def __init__(
        self, server: FhirServer, settings: FollowupSettings, clock: Callable[[], int]
    ) -> None:
        self.server, self.settings, self.clock = server, settings, clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="followup-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        interval = self.settings.sweep_seconds
        # replicas started together spread out; the first sweep comes soon after start-up
        await asyncio.sleep(min(interval, 30.0) * (0.5 + random.random() / 2))
        while True:
            try:
                await sweep(self.server, self.settings, self.clock())
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; try again next time
                log.exception("follow-up sweep failed")
            await asyncio.sleep(interval)
