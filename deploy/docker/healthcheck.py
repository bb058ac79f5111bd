"""The image's HEALTHCHECK: ``GET /healthz`` of the service this container serves.

One image runs every service, each on its own port (``<PREFIX>_PORT`` or ``serve --port``), so
the check cannot name a port: it finds the serving process among the container's processes
(``/proc/*/cmdline``), works out its port the way the service does, and asks it. A container
running a one-shot command (``migrate``, ``auth clients add``) serves nothing: nothing to check.
Only the standard library: the slim base image has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

# command (console script or ``python -m`` module) -> (environment prefix, default port)
SERVICES = {
    "referral-api": ("REFERRAL_API_", 8081),
    "directory-api": ("DIRECTORY_API_", 8082),
    "notifier": ("NOTIFIER_", 8083),
    "auth": ("AUTH_", 8084),
    "web": ("WEB_", 8080),
}
MODULES = {f"{name.replace('-', '_')}.cli": name for name in SERVICES}


def health_url(argv: list[str], env: Mapping[str, str]) -> str | None:
    """The ``/healthz`` URL of ``argv`` if it is a ``<service> serve`` command, else None."""
    for i, arg in enumerate(argv):
        name = os.path.basename(arg)
        if name not in SERVICES and i > 0 and argv[i - 1] == "-m":
            name = MODULES.get(arg, "")
        if name not in SERVICES:
            continue
        rest = argv[i + 1 :]
        if not rest or rest[0] != "serve":
            return None
        prefix, port = SERVICES[name]
        port = int(env.get(f"{prefix}PORT") or port)
        for j, option in enumerate(rest):
            if option == "--port" and j + 1 < len(rest):
                port = int(rest[j + 1])
            elif option.startswith("--port="):
                port = int(option.split("=", 1)[1])
        return f"http://127.0.0.1:{port}/healthz"
    return None


def running_commands(proc: Path = Path("/proc")) -> list[list[str]]:
    commands = []
    for entry in proc.glob("[0-9]*/cmdline"):
        try:
            raw = entry.read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        if raw:
            commands.append([part.decode(errors="replace") for part in raw.split(b"\0") if part])
    return commands


def check(commands: Iterable[list[str]], env: Mapping[str, str], timeout: float = 3.0) -> int:
    """0 when every serving process answers ``/healthz`` with 200 (or none serves), else 1."""
    urls = {url for argv in commands if (url := health_url(argv, env))}
    for url in sorted(urls):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if response.status != 200:
                    print(f"{url}: {response.status}", file=sys.stderr)
                    return 1
        except OSError as exc:  # URLError, HTTPError, timeouts and refusals
            print(f"{url}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(check(running_commands(), os.environ))
