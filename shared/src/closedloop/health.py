"""``/healthz`` (the process is up) and ``/readyz`` (its database answers): what every service,
FHIR or not, owes its orchestrator."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse

log = logging.getLogger("closedloop.service")


def add_health_routes(app: FastAPI, name: str) -> None:
    """The two probes; ``/readyz`` pings ``app.state.db`` (set by the app's lifespan)."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "service": name})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            await app.state.db.ping()
        except Exception:  # the database is what readiness means here
            log.warning("database not reachable")
            return JSONResponse({"status": "unavailable", "service": name}, status_code=503)
        return JSONResponse({"status": "ready", "service": name})
