"""The referral-api ASGI app: the shared FHIR engine for the referral resource types, with the
SDOH Clinical Care rules, the directory check of referral targets and the event outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from closedloop.fhir.instant import now_us
from closedloop.fhir.server import FhirServer
from closedloop.hooks import HookPoint
from closedloop.http import credentials_from, service_client
from closedloop.service import create_service_app
from fastapi import FastAPI

from referral_api import rules
from referral_api.followup.operation import sweep_stalled
from referral_api.followup.worker import SweepWorker
from referral_api.measures.operation import evaluate_measure
from referral_api.measures.publish import publish_measure
from referral_api.outbox.dispatcher import OutboxDispatcher
from referral_api.outbox.metrics import OutboxMetrics
from referral_api.resources import READ_ONLY_TYPES, RESOURCE_TYPES, SEARCH_PARAMS
from referral_api.settings import Settings
from referral_api.targets import DirectoryTargets
from referral_api.voice.operation import aggregate
from referral_api.voice.publish import publish_questionnaire

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("referral_api")


def create_app(settings: Settings | None = None, clock: Callable[[], int] = now_us) -> FastAPI:
    """``clock``: now in microseconds, for the follow-up sweeps (tests set the time)."""
    settings = settings or Settings()

    async def startup(app: FastAPI, server: FhirServer) -> None:
        # the other services check tokens too: referral-api's own (REFERRAL_API_CLIENT_*)
        credentials = credentials_from(settings)
        directory = service_client(settings.directory_timeout, credentials)
        app.state.directory_client = directory
        rules.install(
            server,
            DirectoryTargets(settings.directory_url, directory, server.repo),
            require_consent=settings.require_consent,
        )
        app.state.measures = settings.measures()
        await publish_measure(server)
        await publish_questionnaire(server)
        app.state.clock = clock
        app.state.followup = settings.followup()
        app.state.sweeper = None
        if settings.followup_sweep_seconds > 0:
            app.state.sweeper = SweepWorker(server, app.state.followup, clock)
            app.state.sweeper.start()
        app.state.dispatcher = None
        if settings.event_sink_url:
            # the shared secret when one is set, else referral-api's access token
            token = settings.event_sink_token
            if token is None and credentials is None:
                log.warning(
                    "neither REFERRAL_API_EVENT_SINK_TOKEN nor REFERRAL_API_CLIENT_ID is set: "
                    "the notifier refuses events without one, so they wait in the outbox"
                )
            dispatcher = OutboxDispatcher(
                server.db,
                settings.event_sink_url,
                service_client(settings.event_sink_timeout, None if token else credentials),
                max_backoff=settings.event_retry_max_seconds,
                token=token.get_secret_value() if token else None,
                metrics=app.state.outbox_metrics,
            )
            app.state.dispatcher = dispatcher

            async def wake(_ctx: Any, _changes: Any) -> None:
                dispatcher.notify()

            server.hooks.register(HookPoint.AFTER_COMMIT, wake)
            dispatcher.start()

    async def shutdown(app: FastAPI, _server: FhirServer) -> None:
        if app.state.sweeper is not None:
            await app.state.sweeper.stop()
        if app.state.dispatcher is not None:
            await app.state.dispatcher.stop()
            await app.state.dispatcher.client.aclose()
        await app.state.directory_client.aclose()

    app = create_service_app(
        name="referral-api",
        settings=settings,
        resource_types=RESOURCE_TYPES,
        migrations=MIGRATIONS,
        search_params=SEARCH_PARAMS,
        read_only_types=READ_ONLY_TYPES,
        operations={
            "evaluate-measure": evaluate_measure,
            "sweep-stalled": sweep_stalled,
            "aggregate": aggregate,
        },
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
    app.state.outbox_metrics = OutboxMetrics(
        app.state.metrics, lambda: getattr(app.state, "db", None)
    )
    return app
