"""The `notifier` command: `serve` runs the service, `reindex` rebuilds search indexes
(settings come from the environment, see the README)."""

from __future__ import annotations

from closedloop.cli import run_cli

from notifier.app import create_app
from notifier.settings import Settings


def main(argv: list[str] | None = None) -> None:
    run_cli("notifier", Settings, create_app, argv)


if __name__ == "__main__":
    main()
