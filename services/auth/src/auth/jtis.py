"""Client assertion ids already used, kept in the database until the assertion has expired so a
replay is refused by every process serving the token endpoint."""

from __future__ import annotations

import time

from closedloop.db import Database
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from auth.tables import used_jtis


async def seen(db: Database, client_id: str, jti: str) -> bool:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(used_jtis.c.jti).where(
                    used_jtis.c.client_id == client_id,
                    used_jtis.c.jti == jti,
                    used_jtis.c.expires_at >= time.time(),
                )
            )
        ).first()
    return row is not None


async def use(db: Database, client_id: str, jti: str, expires_at: float) -> bool:
    """Record the id; False when it was already used (another request got there first)."""
    now = time.time()
    try:
        async with db.write() as conn:
            await conn.execute(delete(used_jtis).where(used_jtis.c.expires_at < now))
            await conn.execute(
                insert(used_jtis).values(client_id=client_id, jti=jti, expires_at=expires_at)
            )
    except IntegrityError:
        return False
    return True
