"""The command line every service shares: ``serve``, ``reindex`` and ``migrate``.

A service's ``cli.py`` calls ``run_cli`` with its settings class and app factory; extra
commands (directory-api's HSDS import, say) plug in through ``extra_commands``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from closedloop.db import create_database, upgrade_to_head
from closedloop.fhir.storage.reindex import reindex
from closedloop.logs import configure_logging
from closedloop.settings import ServiceSettings

Command = Callable[[argparse.Namespace, ServiceSettings], None]


def server_config(app: Any, settings: ServiceSettings) -> uvicorn.Config:
    """How every service runs under uvicorn: our JSON logs, no access log (it logs query
    strings), and idle keep-alive connections closed after ``keep_alive_timeout`` seconds
    (a body that trickles in is cut off by ``guards.BodyDeadline``)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=settings.keep_alive_timeout,
    )


def _serve(name: str, settings: ServiceSettings, create_app: Callable[[Any], FastAPI]) -> None:
    configure_logging(name, settings.log_level)
    uvicorn.Server(server_config(create_app(settings), settings)).run()


async def _reindex(
    settings: ServiceSettings, create_app: Callable[[Any], FastAPI], types: list[str]
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        server = app.state.fhir
        unknown = [t for t in types if not server.supports(t)]
        if unknown:
            sys.exit(f"not served here: {', '.join(unknown)}")

        def progress(rtype: str, done: int) -> None:
            print(f"\r{rtype}: {done} reindexed", end="", file=sys.stderr, flush=True)

        counts = await reindex(
            server.db,
            server.repo.indexer,
            types or server.config.resource_types,
            progress=progress,
        )
        for rebuild in server.config.derived_indexes:
            async with server.db.write() as conn:
                await rebuild(conn)
    print(file=sys.stderr)
    for rtype, n in counts.items():
        print(f"{rtype}: {n} resources reindexed")


async def migrate(database_url: str, migrations: Path) -> None:
    """Brings the database to the newest schema and stops: a deployment runs this once
    (a Compose one-shot service, a Kubernetes Job) before it starts or rolls out the service,
    so no replica starts on a schema older than its code. ``serve`` still migrates at
    start-up, which is then a no-op."""
    db = create_database(database_url, pool_size=2)
    try:
        await upgrade_to_head(db, migrations)
    finally:
        await db.dispose()


def run_cli(
    name: str,
    settings_class: type[ServiceSettings],
    create_app: Callable[[Any], FastAPI],
    argv: list[str] | None = None,
    extra_commands: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]]
    | None = None,
    migrations: Path | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=name)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=None, help="bind address (overrides the environment)")
    serve.add_argument("--port", type=int, default=None, help="port (overrides the environment)")
    again = sub.add_parser("reindex", help="rebuild search index rows of stored resources")
    again.add_argument("--type", action="append", default=[], help="a resource type (repeat)")
    if migrations is not None:
        sub.add_parser("migrate", help="apply the database migrations and exit")
    for cmd, (configure, _) in (extra_commands or {}).items():
        configure(sub.add_parser(cmd))
    args = parser.parse_args(argv)
    settings = settings_class()
    if args.command == "serve":
        if args.host:
            settings.host = args.host
        if args.port:
            settings.port = args.port
        _serve(name, settings, create_app)
    elif args.command == "reindex":
        configure_logging(name, "WARNING")
        asyncio.run(_reindex(settings, create_app, args.type))
    elif args.command == "migrate" and migrations is not None:
        configure_logging(name, settings.log_level)
        asyncio.run(migrate(settings.database_url, migrations))
    else:
        (extra_commands or {})[args.command][1](args, settings)
