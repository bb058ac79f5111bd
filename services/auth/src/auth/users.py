"""Local accounts: people who sign in at ``/authorize``. Passwords are stored as argon2id hashes
(argon2-cffi's defaults, RFC 9106's second recommended set) and checked off the event loop; an
unknown username costs the same hash check as a wrong password, so timing does not tell which
usernames exist."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from closedloop.auth.roles import USER_ROLES
from closedloop.db import Database
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from auth.tables import users

ROLES = USER_ROLES
# the references a fhirUser claim may hold (SMART App Launch: the user's FHIR resource)
FHIR_USER_TYPES = ("Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Person")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")
_REFERENCE = re.compile(r"^([A-Za-z]+)/[A-Za-z0-9\-.]{1,64}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a login form cheap to refuse

_hasher = PasswordHasher()  # argon2id
_DUMMY = _hasher.hash("an unknown user's password is checked against this")
NO_PASSWORD = "!"  # not a PHC string: argon2 refuses every password against it


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    organization: str
    role: str
    fhir_user: str | None
    disabled: bool
    external_subject: str | None = None  # at the trusted external issuer (auth.external)


def _row_to_user(row: Any) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        organization=row.organization,
        role=row.role,
        fhir_user=row.fhir_user,
        disabled=bool(row.disabled),
        external_subject=row.external_subject,
    )


async def add_user(
    db: Database,
    *,
    username: str,
    password: str | None,
    organization: str,
    role: str,
    fhir_user: str | None = None,
    external_subject: str | None = None,
) -> User:
    """``password`` None: an account that signs in only at the external issuer, as
    ``external_subject`` (its hash is one no password matches)."""
    if not _USERNAME.match(username):
        raise UserError("a username is 1-200 letters, digits or . _ @ + -")
    if role not in ROLES:
        raise UserError(f"the role is one of {', '.join(ROLES)}")
    m = _REFERENCE.match(organization)
    if not m or m.group(1) != "Organization":
        raise UserError("the organization is a reference like Organization/123")
    if fhir_user is not None:
        m = _REFERENCE.match(fhir_user)
        if not m or m.group(1) not in FHIR_USER_TYPES:
            raise UserError(f"fhirUser is a reference to one of {', '.join(FHIR_USER_TYPES)}")
    if external_subject is not None and not 0 < len(external_subject) <= 255:
        raise UserError("an external subject is 1-255 characters")
    if password is None and external_subject is None:
        raise UserError("an account needs a password, or an external subject to sign in as")
    if password is not None and not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password is {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    password_hash = (
        await asyncio.to_thread(_hasher.hash, password) if password is not None else NO_PASSWORD
    )
    user_id = uuid.uuid4().hex
    row = {
        "user_id": user_id,
        "username": username,
        "password_hash": password_hash,
        "organization": organization,
        "role": role,
        "fhir_user": fhir_user,
        "disabled": False,
        "created_at": time.time(),
        "external_subject": external_subject,
    }
    try:
        async with db.write() as conn:
            await conn.execute(insert(users).values(**row))
    except IntegrityError:
        raise UserError(f"user {username!r} (or that external subject) exists") from None
    return User(user_id, username, organization, role, fhir_user, False, external_subject)


async def get_user(db: Database, user_id: str) -> User | None:
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.user_id == user_id))).first()
    return _row_to_user(row) if row else None


async def get_user_by_name(db: Database, username: str) -> User | None:
    if len(username) > 200:
        return None
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.username == username))).first()
    return _row_to_user(row) if row else None


async def get_user_by_external_subject(db: Database, subject: str) -> User | None:
    if not 0 < len(subject) <= 255:
        return None
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.external_subject == subject))).first()
    return _row_to_user(row) if row else None


async def list_users(db: Database) -> list[User]:
    async with db.read() as conn:
        rows = (await conn.execute(select(users).order_by(users.c.username))).all()
    return [_row_to_user(r) for r in rows]


async def disable_user(db: Database, username: str) -> bool:
    async with db.write() as conn:
        result = await conn.execute(
            update(users).where(users.c.username == username).values(disabled=True)
        )
    return bool(result.rowcount)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(db: Database, username: str, password: str) -> User | None:
    """The active user with this password, or None: an unknown username, a wrong password and
    a disabled account all look the same to the caller (and take the same time)."""
    if len(password) > MAX_PASSWORD or len(username) > 200:
        return None
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.username == username))).first()
    ok = await asyncio.to_thread(_verify, row.password_hash if row else _DUMMY, password)
    if row is None or not ok or row.disabled:
        return None
    return _row_to_user(row)
