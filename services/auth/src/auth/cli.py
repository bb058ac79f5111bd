"""The `auth` command: `serve`, `migrate`, `clients add|ensure|list|disable`,
`users add|list|disable`, `keys rotate`, `launch` (register an EHR launch context), and `token`
(a developer's helper that signs a client assertion with a local private key and prints an
access token). Settings come from AUTH_* environment variables (see the README)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from closedloop.auth.roles import CLIENT_ROLES
from closedloop.cli import migrate, server_config
from closedloop.db import Database, create_database, upgrade_to_head
from closedloop.logs import configure_logging
from joserfc import jwk, jwt
from pydantic import ValidationError

from auth import grants, keys
from auth.app import MIGRATIONS, create_app
from auth.audit.decisions import AuthAudit
from auth.clients import (
    ClientError,
    add_client,
    disable_client,
    get_client,
    list_clients,
    update_terms,
)
from auth.launches import check_context
from auth.settings import Settings
from auth.users import ROLES, UserError, add_user, disable_user, list_users

T = TypeVar("T")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = create_database(settings.database_url, pool_size=2)
        try:
            await upgrade_to_head(db, MIGRATIONS)
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _record_change(
    settings: Settings, subtype: str, entities: list[tuple[str, str]], action: str = "U"
) -> None:
    """An administrator's change on the audit trail: who ran it (the OS account), what, on
    which client, user or key; never a key, a password or a secret."""

    async def record(db: Database) -> None:
        await AuthAudit(db, enabled=settings.audit_enabled).change(subtype, entities, action=action)

    _with_db(settings, record)


def _secret(settings: Settings) -> str | None:
    return settings.key_secret.get_secret_value() if settings.key_secret else None


def _configure_clients(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="register a backend client or an app people sign in to")
    add.add_argument("--client-id", required=True)
    add.add_argument("--name", required=True)
    source = add.add_mutually_exclusive_group()
    source.add_argument("--jwks", type=Path, help="a file with the client's public JWKS")
    source.add_argument("--jwks-url", help="where the client publishes its JWKS")
    source.add_argument(
        "--generate-key",
        type=Path,
        metavar="FILE",
        help="development: make a key pair, write the private JWK to FILE, register the public",
    )
    add.add_argument(
        "--alg", choices=["ES384", "RS384"], default="ES384", help="for --generate-key"
    )
    add.add_argument(
        "--scopes", required=True, help='e.g. "system/Task.rs system/ServiceRequest.crs"'
    )
    add.add_argument("--organization", help="e.g. Organization/123 (goes into its tokens)")
    add.add_argument(
        "--role",
        choices=CLIENT_ROLES,
        help="requester (default with --organization) or cbo: acts for its organization; "
        "service or admin: the platform's own services, administrators (no organization)",
    )
    add.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="an app's exact redirect URI (repeatable): lets people sign in to it",
    )
    add.add_argument(
        "--public",
        action="store_true",
        help="a public app (browser or native: no keys, PKCE is its only proof)",
    )
    ensure = sub.add_parser(
        "ensure",
        help="development: register a backend client unless it is registered, with the key "
        "in --key-file (made if missing); safe to run on every start",
    )
    ensure.add_argument("--client-id", required=True)
    ensure.add_argument("--name", required=True)
    ensure.add_argument("--scopes", required=True)
    ensure.add_argument("--role", choices=CLIENT_ROLES)
    ensure.add_argument("--organization")
    ensure.add_argument(
        "--key-file", type=Path, help="default: AUTH_CLIENT_KEYS_DIR/<client id>.json"
    )
    ensure.add_argument("--alg", choices=["ES384", "RS384"], default="ES384")
    ensure.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="an app's exact redirect URI (repeatable): people sign in to it too, the code "
        "exchange signed with the same key (the web app)",
    )
    sub.add_parser("list", help="list registered clients")
    disable = sub.add_parser("disable", help="refuse a client's assertions from now on")
    disable.add_argument("client_id")


def _write_private_key(path: Path, key: Any, alg: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({**key.as_dict(private=True), "alg": alg}, out)


def _terms(client: Any) -> tuple[Any, ...]:
    return (
        client.name,
        client.scopes,
        client.organization,
        client.redirect_uris,
        client.role,
    )


def _ensure_client(args: argparse.Namespace, settings: Any) -> None:
    """Idempotent registration (``make run``, the deployments' provisioning): the key file is
    made once, the client is registered once with its public half, and later runs bring its
    name, scopes, organization, role and redirect URIs up to date; a client registered with
    another key is an error (remove the client's database or key file to start over)."""
    key_file = args.key_file or settings.client_keys_dir / f"{args.client_id}.json"
    if not key_file.exists():
        _write_private_key(key_file, keys.new_key(args.alg), args.alg)
    try:
        private = json.loads(key_file.read_text())
        key = jwk.import_key(private)
    except (OSError, ValueError) as exc:
        sys.exit(f"cannot read the key {key_file}: {exc}")
    alg = private.get("alg") or args.alg
    existing = _with_db(settings, lambda db: get_client(db, args.client_id))
    if existing is not None:
        kids = {k.get("kid") for k in (existing.jwks or {}).get("keys", [])}
        if key.kid not in kids:
            sys.exit(f"{args.client_id} is registered with other keys than {key_file}")
        terms = (args.name, args.scopes, args.organization, args.redirect_uri, args.role)
        try:
            updated = _with_db(
                settings,
                lambda db: update_terms(
                    db,
                    args.client_id,
                    name=terms[0],
                    scopes=terms[1],
                    organization=terms[2],
                    redirect_uris=terms[3],
                    role=terms[4],
                ),
            )
        except ClientError as exc:
            sys.exit(str(exc))
        if updated is not None and _terms(updated) != _terms(existing):
            _record_change(settings, "client-update", [("client", args.client_id)], "U")
            print(f"{args.client_id} updated: {' '.join(updated.scopes)} (key {key_file})")
        else:
            print(f"{args.client_id} already registered (key {key_file})")
        return
    jwks = {"keys": [{**key.as_dict(private=False), "alg": alg}]}
    try:
        client = _with_db(
            settings,
            lambda db: add_client(
                db,
                client_id=args.client_id,
                name=args.name,
                scopes=args.scopes,
                jwks=jwks,
                organization=args.organization,
                role=args.role,
                redirect_uris=args.redirect_uri,
            ),
        )
    except ClientError as exc:
        sys.exit(str(exc))
    _record_change(settings, "client-add", [("client", client.client_id)], "C")
    print(f"registered {client.client_id}: {' '.join(client.scopes)} (key {key_file})")


def _clients(args: argparse.Namespace, settings: Any) -> None:
    if args.action == "ensure":
        _ensure_client(args, settings)
    elif args.action == "add":
        if not args.public and not (args.jwks or args.jwks_url or args.generate_key):
            sys.exit("give one of --jwks, --jwks-url, --generate-key (or --public)")
        jwks: dict[str, Any] | None = None
        if args.jwks is not None:
            try:
                jwks = json.loads(args.jwks.read_text())
            except (OSError, ValueError) as exc:
                sys.exit(f"cannot read the JWKS file: {exc}")
        key = None
        if args.generate_key is not None:
            if args.generate_key.exists():
                sys.exit(f"{args.generate_key} exists: not overwriting a key")
            key = keys.new_key(args.alg)
            jwks = {"keys": [{**key.as_dict(private=False), "alg": args.alg}]}
        try:
            client = _with_db(
                settings,
                lambda db: add_client(
                    db,
                    client_id=args.client_id,
                    name=args.name,
                    scopes=args.scopes,
                    jwks=jwks,
                    jwks_url=args.jwks_url,
                    organization=args.organization,
                    role=args.role,
                    redirect_uris=args.redirect_uri,
                    public=args.public,
                ),
            )
        except ClientError as exc:
            sys.exit(str(exc))
        _record_change(settings, "client-add", [("client", client.client_id)], "C")
        if key is not None:
            _write_private_key(args.generate_key, key, args.alg)
            print(f"private key written to {args.generate_key} (kid {key.kid})")
        print(f"registered {client.client_id}: {' '.join(client.scopes)}")
    elif args.action == "list":
        for c in _with_db(settings, list_clients):
            state = "disabled" if c.disabled else "active"
            keys_from = "public" if c.public else c.jwks_url or "inline JWKS"
            org = c.organization or "-"
            role = c.role or "-"
            fields = (c.client_id, state, c.name, org, role, keys_from, " ".join(c.scopes))
            line = "\t".join(fields)
            print(line + "".join(f"\t{u}" for u in c.redirect_uris))
    else:
        if not _with_db(settings, lambda db: disable_client(db, args.client_id)):
            sys.exit(f"no client {args.client_id!r}")
        _record_change(settings, "client-disable", [("client", args.client_id)])
        print(f"disabled {args.client_id}")


def _configure_users(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a local account (the password is read from stdin)")
    add.add_argument("--username", required=True)
    add.add_argument("--organization", required=True, help="e.g. Organization/123")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--fhir-user", help="the user's FHIR resource, e.g. Practitioner/123 (fhirUser claim)"
    )
    add.add_argument(
        "--external-subject",
        help="the user's sub (or e-mail, with AUTH_EXTERNAL_OIDC_CLAIM=email) at the trusted "
        "external OpenID Connect issuer; with it no password is read unless --password-too",
    )
    add.add_argument(
        "--password-too",
        action="store_true",
        help="with --external-subject: read a local password as well",
    )
    sub.add_parser("list", help="list local accounts")
    disable = sub.add_parser("disable", help="refuse a user's sign-ins and refreshes from now on")
    disable.add_argument("username")


def _read_password() -> str:
    """From a terminal: asked twice, not echoed; from a pipe: the first line."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            sys.exit("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _users(args: argparse.Namespace, settings: Any) -> None:
    if args.action == "add":
        external_only = args.external_subject and not args.password_too
        password = None if external_only else _read_password()
        try:
            user = _with_db(
                settings,
                lambda db: add_user(
                    db,
                    username=args.username,
                    password=password,
                    organization=args.organization,
                    role=args.role,
                    fhir_user=args.fhir_user,
                    external_subject=args.external_subject,
                ),
            )
        except UserError as exc:
            sys.exit(str(exc))
        _record_change(settings, "user-add", [("user", user.user_id)], "C")
        print(f"added {user.username} ({user.role}, {user.organization}), sub {user.user_id}")
    elif args.action == "list":
        for u in _with_db(settings, list_users):
            state = "disabled" if u.disabled else "active"
            fhir_user = u.fhir_user or "-"
            external = u.external_subject or "-"
            print(
                f"{u.username}\t{state}\t{u.role}\t{u.organization}\t{fhir_user}\t{u.user_id}"
                f"\t{external}"
            )
    else:
        if not _with_db(settings, lambda db: disable_user(db, args.username)):
            sys.exit(f"no user {args.username!r}")
        _record_change(settings, "user-disable", [("username", args.username)])
        print(f"disabled {args.username}")


def _configure_launch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patient", required=True, help="the patient's FHIR id")
    parser.add_argument("--encounter", help="the encounter's FHIR id")


def _launch(args: argparse.Namespace, settings: Any) -> None:
    wanted = {"patient": args.patient}
    if args.encounter:
        wanted["encounter"] = args.encounter
    try:
        context = check_context(wanted)
    except ValueError as exc:
        sys.exit(str(exc))
    launch = _with_db(
        settings,
        lambda db: grants.create_launch(db, context, "cli", settings.launch_lifetime),
    )
    print(f"launch id, good for {settings.launch_lifetime} s:", file=sys.stderr)
    print(launch)


def _configure_keys(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    rotate = sub.add_parser(
        "rotate", help="sign with new keys (access tokens, id_tokens); the old stay published"
    )
    rotate.add_argument("--alg", choices=["ES384", "RS384"], default=None)


def _keys(args: argparse.Namespace, settings: Any) -> None:
    """Both kinds: the access-token key (``--alg``) and the id_token key (RS256)."""
    alg = args.alg or settings.signing_alg
    kid = _with_db(settings, lambda db: keys.rotate(db, alg, _secret(settings)))
    id_kid = _with_db(settings, lambda db: keys.rotate(db, keys.ID_TOKEN_ALG, _secret(settings)))
    _record_change(settings, "keys-rotate", [("key", kid), ("key", id_kid)])
    kept = settings.token_lifetime + int(keys.SKEW)
    print(f"new signing key {kid} ({alg}); the previous key stays published for {kept} s")
    print(f"new id_token key {id_kid} ({keys.ID_TOKEN_ALG}), the same way")


def _configure_token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client-id", required=True)
    parser.add_argument(
        "--key",
        type=Path,
        help="the client's private JWK file; default: the one "
        "`clients ensure` keeps, AUTH_CLIENT_KEYS_DIR/<client id>.json (.data/keys/)",
    )
    parser.add_argument("--scope", help="default: every scope registered for the client")
    parser.add_argument("--token-url", help="default: AUTH_ISSUER/token")


def _token(args: argparse.Namespace, settings: Any) -> None:
    key_file = args.key or settings.client_keys_dir / f"{args.client_id}.json"
    try:
        private = json.loads(key_file.read_text())
        key = jwk.import_key(private)
    except (OSError, ValueError) as exc:
        sys.exit(f"cannot read the key: {exc}")
    alg = private.get("alg") or ("ES384" if private.get("kty") == "EC" else "RS384")
    token_url = args.token_url or settings.token_url
    scope = args.scope
    if scope is None:
        client = _with_db(settings, lambda db: get_client(db, args.client_id))
        if client is None:
            sys.exit(f"no client {args.client_id!r} here: pass --scope")
        scope = " ".join(client.scopes)
    now = int(time.time())
    claims = {
        "iss": args.client_id,
        "sub": args.client_id,
        "aud": token_url,
        "exp": now + 240,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": alg, "typ": "JWT"}
    if key.kid:
        header["kid"] = key.kid
    assertion = jwt.encode(header, claims, key, algorithms=[alg])
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    try:
        r = httpx.post(token_url, data=form, timeout=10)
    except httpx.HTTPError as exc:
        sys.exit(f"{token_url}: {type(exc).__name__}")
    if r.status_code != 200:
        sys.exit(f"{r.status_code}: {r.text}")
    body = r.json()
    print(f"scope: {body.get('scope')}, expires in {body.get('expires_in')} s", file=sys.stderr)
    print(body["access_token"])


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (overrides the environment)")
    parser.add_argument("--port", type=int, default=None, help="port (overrides the environment)")


def _serve(args: argparse.Namespace, settings: Any) -> None:
    """As every service serves (``closedloop.cli.server_config``); not ``run_cli``, whose
    ``reindex`` is about FHIR search indexes this service does not have."""
    settings.host = args.host or settings.host
    settings.port = args.port or settings.port
    configure_logging("auth", settings.log_level)
    uvicorn.Server(server_config(create_app(settings), settings)).run()


def _migrate(args: argparse.Namespace, settings: Any) -> None:
    """Once per deployment, before the rollout (``closedloop.cli.migrate``)."""
    configure_logging("auth", settings.log_level)
    asyncio.run(migrate(settings.database_url, MIGRATIONS))


COMMANDS = {
    "serve": ("run the HTTP service", _configure_serve, _serve),
    "migrate": ("apply the database migrations and exit", lambda parser: None, _migrate),
    "clients": ("register, list and disable backend clients", _configure_clients, _clients),
    "users": ("add, list and disable people's local accounts", _configure_users, _users),
    "keys": ("the server's signing keys", _configure_keys, _keys),
    "launch": ("register an EHR launch context; prints its launch id", _configure_launch, _launch),
    "token": ("development: get an access token with a client's key", _configure_token, _token),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="auth")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid AUTH_* settings: {exc}")
    COMMANDS[args.command][2](args, settings)


if __name__ == "__main__":
    main()
