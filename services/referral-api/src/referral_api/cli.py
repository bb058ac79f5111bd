"""The `referral-api` command: `serve` runs the service, `migrate` applies the migrations and
exits, `reindex` rebuilds search indexes, `measures-backfill` rebuilds the loop metrics' projection
(settings come from the environment, see the README)."""

from __future__ import annotations

from closedloop.cli import run_cli

from referral_api.app import MIGRATIONS, create_app
from referral_api.measures.commands import COMMANDS
from referral_api.settings import Settings


def main(argv: list[str] | None = None) -> None:
    run_cli(
        "referral-api", Settings, create_app, argv, extra_commands=COMMANDS, migrations=MIGRATIONS
    )


if __name__ == "__main__":
    main()
