"""The `web` command: `web serve` (settings from WEB_* environment variables, see README)."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from closedloop.logs import configure_logging
from pydantic import ValidationError

from web.app import create_app
from web.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="web")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the web app")
    parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid WEB_* settings: {exc}")
    configure_logging("web", settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # it would log the signed links' query strings
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
