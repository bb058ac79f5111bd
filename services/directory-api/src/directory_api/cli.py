"""`directory-api serve`: run the service with uvicorn (settings from DIRECTORY_API_* variables)."""

from __future__ import annotations

import argparse

import uvicorn
from closedloop.logs import configure_logging

from directory_api.app import create_app
from directory_api.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="directory-api")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=None, help="bind address (default DIRECTORY_API_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default DIRECTORY_API_PORT)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    configure_logging("directory-api", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
