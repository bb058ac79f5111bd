"""The ``import-hsds`` and ``export-hsds`` subcommands, plugged into the shared run_cli."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from closedloop.cli import Command
from closedloop.logs import configure_logging
from closedloop.settings import ServiceSettings

from directory_api.hsds.readers import ReadError


def configure_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="HSDS .json/.ndjson file or datapackage folder")
    p.add_argument("--source", required=True, help="a short name for the source, e.g. chi211")
    p.add_argument("--timezone", default=None, help="IANA zone for schedules without one")
    p.add_argument("--report", type=Path, default=None, help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, default=None, help="file to write (default stdout)")


async def _with_server(settings: ServiceSettings, job: Any) -> Any:
    from directory_api.app import create_app

    app = create_app(settings)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        return await job(app.state.fhir)


def run_import(args: argparse.Namespace, settings: ServiceSettings) -> None:
    from directory_api.hsds.importer import import_path

    configure_logging("directory-api", "WARNING")
    tz = args.timezone or getattr(settings, "default_timezone", "America/Chicago")
    if not args.path.exists():
        print(f"directory-api import-hsds: {args.path}: no such file or directory", file=sys.stderr)
        sys.exit(2)
    try:
        report = asyncio.run(
            _with_server(
                settings,
                lambda server: import_path(
                    server, args.path, args.source, tz, progress=not args.no_progress
                ),
            )
        )
    except ReadError as exc:
        print(f"directory-api import-hsds: {exc}", file=sys.stderr)
        sys.exit(2)
    print(report.text())
    if args.report:
        args.report.write_text(json.dumps(report.as_dict(), indent=2))


def run_export(args: argparse.Namespace, settings: ServiceSettings) -> None:
    from directory_api.hsds.export import export_services

    configure_logging("directory-api", "WARNING")
    services = asyncio.run(_with_server(settings, export_services))
    text = json.dumps(services, indent=2, ensure_ascii=False)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"{len(services)} services written to {args.output}", file=sys.stderr)
    else:
        print(text)


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {
    "import-hsds": (configure_import, run_import),
    "export-hsds": (configure_export, run_export),
}
