"""Structured JSON logs: one line per event, a request id on every request line, the trace id
(``trace_id``, ``span_id``) on every line written inside a trace, and never a resource body or
a query string (they carry PHI: names, MRNs, birth dates)."""

from __future__ import annotations

import logging
import sys
import time
import traceback
import uuid
from typing import Any

import orjson
from opentelemetry import trace

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

# Exceptions whose messages can quote the data they failed on (a database driver's "invalid
# input ... 'value'", a statement's parameters, a model's input): their type and traceback are
# logged, their message never is.
_DATA_BEARING = ("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite", "pydantic", "pydantic_core")
WITHHELD = "(message withheld: it may quote stored data)"


def _withheld_text(exc: BaseException) -> str:
    """What is safe to say about a data-bearing exception: a failed statement's SQL (its
    parameters are never in it) and the driver's SQLSTATE."""
    text = WITHHELD
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        text = f"[SQL: {statement[:1000]}] {text}"
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(state, str):
        text = f"(SQLSTATE {state}) {text}"
    return text


def _withhold_data(te: traceback.TracebackException, exc: BaseException) -> None:
    seen: set[int] = set()
    stack: list[tuple[Any, BaseException | None]] = [(te, exc)]
    while stack:
        cur, value = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        module = getattr(cur.exc_type, "__module__", "") or ""
        if module.split(".")[0] in _DATA_BEARING:
            cur._str = _withheld_text(value) if value is not None else WITHHELD
            if hasattr(cur, "__notes__"):
                cur.__notes__ = None
        for te_next, next_value in (
            (cur.__cause__, getattr(value, "__cause__", None)),
            (cur.__context__, getattr(value, "__context__", None)),
        ):
            if te_next is not None:
                stack.append((te_next, next_value))
        for i, sub in enumerate(getattr(cur, "exceptions", None) or ()):
            subs = getattr(value, "exceptions", None) or ()
            stack.append((sub, subs[i] if i < len(subs) else None))


def format_exception_safely(exc_info: Any) -> str:
    """A traceback with the messages of data-bearing exceptions (``_DATA_BEARING``) withheld."""
    te = traceback.TracebackException(*exc_info)
    _withhold_data(te, exc_info[1])
    return "".join(te.format()).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # the request's (or the delivery's) trace: find its spans by it
            out["trace_id"] = format(span.trace_id, "032x")
            out["span_id"] = format(span.span_id, "016x")
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = format_exception_safely(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def quiet_url_loggers() -> None:
    """Loggers that write PHI below WARNING are kept at WARNING, whatever LOG_LEVEL says:
    httpx and httpcore log every URL at INFO, query string included; SQLAlchemy logs statements
    with their parameters and result rows (resource bodies), aiosqlite every call with its SQL
    parameters at DEBUG."""
    for name in ("httpx", "httpcore", "sqlalchemy", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # it logs query strings (PHI)
    quiet_url_loggers()


class RequestLogMiddleware:
    """Pure ASGI middleware: assigns the request id, logs method, path, status and duration."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = logging.getLogger("closedloop.access")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(
                    (b"x-request-id", request_id.encode("latin-1"))
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log.isEnabledFor(logging.INFO):
                self.log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - start) * 1000, 2),
                    },
                )
