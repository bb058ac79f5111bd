"""The notifier ASGI app: FHIR Subscriptions (R5 Backport on R4) over the shared engine, the
intake for referral events, and the delivery worker."""

from __future__ import annotations

from pathlib import Path

from closedloop.fhir.definitions import publish_definitions
from closedloop.fhir.server import FhirServer
from closedloop.http import credentials_from
from closedloop.service import create_service_app
from fastapi import FastAPI

from notifier import operations
from notifier.channels.base import ChannelDeps
from notifier.channels.registry import channel_setup, open_channels
from notifier.delivery.metrics import DeliveryMetrics
from notifier.delivery.worker import DeliveryWorker
from notifier.intake.auth import EventSenders
from notifier.intake.router import router as intake_router
from notifier.resources import INTERNAL_TYPES, READ_ONLY_TYPES, RESOURCE_TYPES
from notifier.settings import Settings
from notifier.subscriptions import ownership
from notifier.subscriptions.guarded_http import guarded_client
from notifier.subscriptions.lifecycle import SubscriptionLifecycle
from notifier.subscriptions.ssrf import EndpointPolicy, Resolver, system_resolver
from notifier.topics import CANONICAL_EXT, TOPICS, basic_resource

MIGRATIONS = Path(__file__).parent / "migrations"


def endpoint_policy(settings: Settings, resolver: Resolver = system_resolver) -> EndpointPolicy:
    hosts = frozenset(h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip())
    return EndpointPolicy(
        hosts, settings.allow_loopback_endpoints, settings.allow_private_endpoints, resolver
    )


async def publish_topics(server: FhirServer) -> None:
    await publish_definitions(
        server, [("Basic", topic.id, basic_resource(topic)) for topic in TOPICS.values()]
    )


def create_app(settings: Settings | None = None, *, resolver: Resolver | None = None) -> FastAPI:
    """``resolver`` replaces the system's DNS for the SSRF guard (tests play DNS with it)."""
    settings = settings or Settings()
    policy = endpoint_policy(settings, resolver or system_resolver)
    setup = channel_setup(settings)
    senders = frozenset(c.strip() for c in settings.event_senders.split(",") if c.strip())
    event_senders = EventSenders(settings.events_token, senders)

    async def startup(app: FastAPI, server: FhirServer) -> None:
        app.state.endpoints = policy
        event_senders.warn_if_unconfigured(server.authenticator is not None)
        app.state.focus_base = settings.referral_url.rstrip("/")
        SubscriptionLifecycle(server, policy, setup).install()
        ownership.install(server)
        await publish_topics(server)
        # subscribers' endpoints are judged at connect time; the configured services are not
        trusted = [url for url in (settings.referral_url, settings.sms_api_url) if url]
        http = guarded_client(policy, trusted)
        app.state.http = http
        deps = ChannelDeps(
            http,
            policy,
            settings.referral_url.rstrip("/"),
            settings.app_url,
            credentials_from(settings),
            settings.link_secret.get_secret_value() if settings.link_secret else None,
            settings.link_lifetime_days * 86400,
        )
        channels = open_channels(settings, deps)
        app.state.delivery = None
        if settings.delivery_enabled:
            worker = DeliveryWorker(
                server,
                channels,
                policy,
                subscription_base=settings.public_base_url
                or f"http://{settings.host}:{settings.port}/fhir",
                focus_base=settings.referral_url,
                max_age_seconds=settings.max_event_age_hours * 3600,
                retry_initial=settings.retry_initial_seconds,
                retry_max=settings.retry_max_seconds,
                poll_seconds=settings.delivery_poll_seconds,
                lease_seconds=settings.delivery_lease_seconds,
                metrics=app.state.delivery_metrics,
            )
            app.state.delivery = worker
            worker.start()

    async def shutdown(app: FastAPI, _server: FhirServer) -> None:
        if app.state.delivery is not None:
            await app.state.delivery.stop()
        await app.state.http.aclose()

    app = create_service_app(
        name="notifier",
        settings=settings,
        resource_types=RESOURCE_TYPES,
        internal_types=INTERNAL_TYPES,
        read_only_types=READ_ONLY_TYPES,
        migrations=MIGRATIONS,
        routers=[intake_router],
        on_startup=[startup],
        on_shutdown=[shutdown],
        operations={"status": operations.status, "events": operations.events},
        capability_extensions={
            "Subscription": [{"url": CANONICAL_EXT, "valueCanonical": url} for url in TOPICS]
        },
    )
    app.state.event_senders = event_senders
    app.state.delivery_metrics = DeliveryMetrics(
        app.state.metrics, lambda: getattr(app.state, "db", None)
    )
    return app
