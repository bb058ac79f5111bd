"""The one error vocabulary: every failure a client can see is a ``FhirError``.

A ``FhirError`` carries an HTTP status and one or more OperationOutcome issues. Each issue has a
stable diagnostic code (``CL-xxxx``) so tests and clients can rely on the code rather than the
wording. The REST layer turns these into ``OperationOutcome`` responses; nothing else should build
error bodies by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    severity: str  # fatal | error | warning | information
    code: str  # http://hl7.org/fhir/issue-type code
    diagnostics: str
    expression: tuple[str, ...] = ()
    cl_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code}
        text = f"{self.cl_code}: {self.diagnostics}" if self.cl_code else self.diagnostics
        out["diagnostics"] = text
        if self.cl_code:
            out["details"] = {
                "coding": [{"system": "urn:closedloop:diagnostic", "code": self.cl_code}]
            }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    """Build an OperationOutcome resource from issues."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def information(text: str, cl_code: str | None = None) -> Issue:
    return Issue("information", "informational", text, cl_code=cl_code)


def warning(
    text: str,
    code: str = "processing",
    cl_code: str | None = None,
    expression: tuple[str, ...] = (),
) -> Issue:
    return Issue("warning", code, text, expression, cl_code)


@dataclass
class FhirError(Exception):
    """An error answered with an OperationOutcome and ``status``."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def _error(
    status: int, code: str, text: str, cl_code: str, expression: tuple[str, ...] | list[str] = ()
) -> FhirError:
    return FhirError(status, [Issue("error", code, text, tuple(expression), cl_code)])


def invalid(
    text: str, expression: tuple[str, ...] | list[str] = (), cl_code: str = "CL-0400"
) -> FhirError:
    """400: the request itself is malformed (bad JSON, bad parameter value, id mismatch)."""
    return _error(400, "invalid", text, cl_code, expression)


def unprocessable(
    text: str, expression: tuple[str, ...] | list[str] = (), cl_code: str = "CL-0422"
) -> FhirError:
    """422: well-formed but fails validation or a business rule."""
    return _error(422, "processing", text, cl_code, expression)


def not_found(text: str, cl_code: str = "CL-0404") -> FhirError:
    return _error(404, "not-found", text, cl_code)


def gone(text: str, version_id: int | None = None) -> FhirError:
    err = _error(410, "deleted", text, "CL-0410")
    if version_id is not None:
        err.headers["ETag"] = f'W/"{version_id}"'
    return err


def conflict(
    text: str, cl_code: str = "CL-0409", expression: tuple[str, ...] | list[str] = ()
) -> FhirError:
    return _error(409, "conflict", text, cl_code, expression)


def precondition_failed(text: str, cl_code: str = "CL-0412") -> FhirError:
    return _error(412, "conflict", text, cl_code)


def not_supported(text: str, status: int = 400, cl_code: str = "CL-0405") -> FhirError:
    return _error(status, "not-supported", text, cl_code)


def unsupported_media_type(text: str) -> FhirError:
    return _error(415, "not-supported", text, "CL-0415")


def too_large(text: str) -> FhirError:
    return _error(413, "too-costly", text, "CL-0413")


def request_timeout(text: str) -> FhirError:
    """408: the request did not arrive in time; the connection is closed after the answer."""
    err = _error(408, "timeout", text, "CL-1408")
    err.headers["Connection"] = "close"
    return err


def uri_too_long(text: str) -> FhirError:
    return _error(414, "too-costly", text, "CL-1414")


def forbidden(text: str) -> FhirError:
    return _error(403, "forbidden", text, "CL-0403")


def unavailable(text: str) -> FhirError:
    return _error(503, "transient", text, "CL-0503")


def internal(request_id: str | None) -> FhirError:
    text = "Unexpected server error"
    if request_id:
        text += f" (request id {request_id})"
    return _error(500, "exception", text, "CL-0500")
