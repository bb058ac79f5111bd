"""The front page: what this is, and the way in for staff."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from web.pages import site_of

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    return site_of(request).render(request, "home.html")
