"""The `notifier` command: `serve` runs the service, `migrate` applies the migrations and exits,
`reindex` rebuilds search indexes (settings come from the environment, see the README)."""

from __future__ import annotations

from closedloop.cli import run_cli

from notifier.app import MIGRATIONS, create_app
from notifier.settings import Settings


def main(argv: list[str] | None = None) -> None:
    run_cli("notifier", Settings, create_app, argv, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
