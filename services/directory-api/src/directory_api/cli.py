"""The `directory-api` command: `serve` runs the service, `migrate` applies the migrations and
exits, `reindex` rebuilds search indexes, `import-hsds`/`export-hsds` load and dump HSDS
(settings come from the environment, see the README)."""

from __future__ import annotations

from closedloop.cli import run_cli

from directory_api.app import MIGRATIONS, create_app
from directory_api.hsds.commands import COMMANDS
from directory_api.settings import Settings


def main(argv: list[str] | None = None) -> None:
    run_cli(
        "directory-api",
        Settings,
        create_app,
        argv,
        extra_commands=COMMANDS,
        migrations=MIGRATIONS,
    )


if __name__ == "__main__":
    main()
