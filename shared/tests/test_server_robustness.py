"""The server and its connections under hostile clients, on a real uvicorn server (the
configuration ``serve`` uses) and raw sockets: an unexpected error never breaks a keep-alive
connection, a body that trickles in is cut off, and requests broken at the HTTP level still get
an OperationOutcome where the app can see them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from closedloop.service import create_service_app
from closedloop.settings import ServiceSettings
from closedloop.testing import free_port, serving
from fastapi import APIRouter

MIGRATIONS = Path(__file__).parent / "fhir" / "rest" / "migrations"
SECRET = "Qwertzuiop-secret-detail"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def outcome(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/fhir+json"), self.headers
        data: dict[str, Any] = orjson.loads(self.body)
        assert data["resourceType"] == "OperationOutcome", data
        return data

    def code(self) -> str:
        return str(self.outcome()["issue"][0]["details"]["coding"][0]["code"])


class Connection:
    """One raw HTTP/1.1 connection: what a keep-alive client does, with nothing retried or
    reopened behind the test's back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str, target: str, body: bytes = b"", **headers: str) -> Reply:
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Length: {len(body)}\r\n"
        for key, value in headers.items():
            head += f"{key.replace('_', '-')}: {value}\r\n"
        await self.send(head.encode() + b"\r\n" + body)
        return await self.reply()

    async def reply(self, timeout: float = 10.0) -> Reply:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return Reply(status, headers, body)

    async def closed_by_server(self, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[tuple[str, int]]:
    boom = APIRouter()

    @boom.get("/boom")
    async def explode() -> None:
        raise RuntimeError(SECRET)

    settings = ServiceSettings(
        database_url=database_url,
        host="127.0.0.1",
        port=free_port(),
        body_read_timeout=0.5,
        body_timeout=1.5,
        keep_alive_timeout=1,
        log_level="WARNING",
    )
    app = create_service_app(
        name="robustness-test",
        settings=settings,
        resource_types=["Patient"],
        migrations=MIGRATIONS,
        routers=[boom],
    )
    async with serving(app, settings):
        yield settings.host, settings.port


async def connect(server: tuple[str, int]) -> Connection:
    reader, writer = await asyncio.open_connection(*server)
    return Connection(reader, writer)


async def test_an_unexpected_error_keeps_the_connection(server: tuple[str, int]) -> None:
    conn = await connect(server)
    try:
        first = await conn.request("GET", "/boom")
        assert first.status == 500
        assert first.code() == "CL-0500"
        assert b"Traceback" not in first.body and SECRET.encode() not in first.body
        # the same connection answers the next request (it used to be closed after a 500)
        second = await conn.request("GET", "/healthz")
        assert second.status == 200, second
        third = await conn.request("GET", "/fhir/Patient?_count=1")
        assert third.status == 200
    finally:
        conn.close()


async def test_a_trickling_body_is_cut_off(server: tuple[str, int]) -> None:
    conn = await connect(server)
    head = (
        b"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/fhir+json\r\nContent-Length: 10000\r\n\r\n"
    )

    async def trickle() -> None:
        for _ in range(100):  # a byte every 0.2 s: each read is in time, the whole body is not
            await conn.send(b" ")
            await asyncio.sleep(0.2)

    start = time.monotonic()
    await conn.send(head)
    sender = asyncio.create_task(trickle())
    try:
        reply = await conn.reply(timeout=10)
        elapsed = time.monotonic() - start
        assert reply.status == 408
        assert reply.code() == "CL-1408"
        assert reply.headers.get("connection") == "close"
        assert elapsed < 4, elapsed
        assert await conn.closed_by_server(timeout=3)
    finally:
        sender.cancel()
        conn.close()


async def test_a_stalled_body_is_cut_off(server: tuple[str, int]) -> None:
    conn = await connect(server)
    try:
        start = time.monotonic()
        await conn.send(
            b"PUT /fhir/Patient/p1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{"
        )
        reply = await conn.reply(timeout=10)
        assert reply.status == 408 and reply.code() == "CL-1408"
        assert time.monotonic() - start < 3
    finally:
        conn.close()


async def test_an_idle_keep_alive_connection_is_closed(server: tuple[str, int]) -> None:
    conn = await connect(server)
    try:
        assert (await conn.request("GET", "/healthz")).status == 200
        assert await conn.closed_by_server(timeout=5)  # keep_alive_timeout is 1 s
    finally:
        conn.close()


async def test_http_level_errors_get_an_operation_outcome(server: tuple[str, int]) -> None:
    conn = await connect(server)
    try:
        unknown = await conn.request("PROPFIND", "/fhir/Patient")
        assert unknown.status == 405 and unknown.code() == "CL-1405"
        allowed = {m.strip() for m in unknown.headers["allow"].split(",")}
        assert {"GET", "POST"} <= allowed and "PROPFIND" not in allowed
        on_instance = await conn.request("POST", "/fhir/Patient/p1", b"{}")
        assert on_instance.status == 405 and on_instance.code() == "CL-1405"
        assert "POST" not in on_instance.headers["allow"]
        assert "PUT" in on_instance.headers["allow"]

        long_url = await conn.request("GET", "/fhir/Patient?name=" + "a" * 60_000)
        assert long_url.status == 414 and long_url.code() == "CL-1414"

        for target in ("/fhir/Patient?name=%zz", "/fhir/Patient?name=%ff", "/fhir/Patient/%ff"):
            bad = await conn.request("GET", target)
            assert bad.status == 400 and bad.code() == "CL-1011", target

        garbage = await conn.request(
            "POST",
            "/fhir/Patient",
            b"\xff\xfe\x00\x01garbage",
            Content_Type="application/fhir+json",
        )
        assert garbage.status == 400 and garbage.code() == "CL-1000"
        wrong_type = await conn.request(
            "POST", "/fhir/Patient", b"<Patient/>", Content_Type="text/plain"
        )
        assert wrong_type.status == 415 and wrong_type.code() == "CL-0415"
        # and the connection still serves
        assert (await conn.request("GET", "/healthz")).status == 200
    finally:
        conn.close()


async def test_what_the_http_parser_refuses_never_reaches_the_app(
    server: tuple[str, int],
) -> None:
    """uvicorn's HTTP parser (httptools/llhttp) refuses a method outside its list (``FOO``),
    a request line over about 64 KB and unescaped bytes in the URL that are not ASCII with a
    plain-text 400 and closes the connection: the app cannot answer those. Methods it knows
    (PROPFIND, ...) reach the app and get a 405 OperationOutcome with Allow, and URLs between
    8 KB and its limit a 414 (above)."""
    for method, target in (
        ("FOO", "/fhir/Patient"),
        ("GET", "/fhir/Patient?x=" + "a" * 100_000),
        ("GET", "/fhir/Patient?name=\xff\xfe"),  # raw bytes that are not ASCII
    ):
        conn = await connect(server)
        try:
            await conn.send(f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"))
            reply = await conn.reply()
            assert reply.status == 400
            assert await conn.closed_by_server(timeout=3)
        finally:
            conn.close()
