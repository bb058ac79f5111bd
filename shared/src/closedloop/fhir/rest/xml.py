"""FHIR XML (http://hl7.org/fhir/R4/xml.html) in and out, by the ``fhir.resources`` R4B models.

JSON stays the stored and served form: XML is converted at the edge, a request body into the
JSON resource the rest of the engine takes, a JSON response body into XML when the client asked
for XML. The models' own XML support (``fhir_core.xml_utils``, on lxml) does the mapping, so no
element order, primitive-extension or narrative rule is written here.

Parsing is hardened against hostile documents: no DTD is loaded, no entity is expanded, nothing
is fetched from the network, lxml's size limits stay on (``huge_tree`` off), and a document
that declares a DOCTYPE at all is refused, so entity bombs and external entities never run.
"""

from __future__ import annotations

from typing import Any

import orjson
from lxml import etree
from pydantic import ValidationError

from closedloop import errors
from closedloop.fhir.validation import model_class

FHIR_NS = "http://hl7.org/fhir"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _bad(text: str) -> errors.FhirError:
    return errors.invalid(text, cl_code="CL-1010")


def parse_xml(body: bytes) -> dict[str, Any]:
    """A FHIR XML resource as its JSON form; 400 for XML that is broken, declares a DOCTYPE
    (entities), is not in the FHIR namespace or does not fit its resource type's model."""
    if not body.strip():
        raise errors.invalid(
            "The request body is empty; an XML resource was expected", cl_code="CL-1000"
        )
    parser = _parser()
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise _bad(f"The body is not well-formed XML: {exc.msg}") from None
    if root.getroottree().docinfo.doctype:
        raise _bad("XML with a DOCTYPE (DTD or entity declarations) is not accepted")
    name = etree.QName(root)
    if name.namespace != FHIR_NS:
        raise _bad(f"The root element must be a FHIR resource in the {FHIR_NS} namespace")
    cls = model_class(name.localname)
    if cls is None:
        raise _bad(f"Unknown resource type {name.localname[:80]!r}")
    try:
        model = cls.model_validate_xml(body, xmlparser=_parser())
    except ValidationError as exc:
        raise _bad(f"The XML does not fit {name.localname}: {_first_error(exc)}") from None
    except KeyError as exc:  # fhir_core's mapping, for an element the type does not have
        raise _bad(f"Unknown element {exc!s:.100} in {name.localname}") from None
    except (ValueError, TypeError, AttributeError, etree.LxmlError) as exc:
        raise _bad(f"The XML does not fit {name.localname}: {exc!s:.200}") from None
    return orjson.loads(model.model_dump_json())  # type: ignore[no-any-return]


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid value')}"[:300]


def to_xml(content: str | bytes, *, pretty: bool = False) -> bytes:
    """A FHIR JSON resource (stored, or a Bundle/OperationOutcome we built) as FHIR XML."""
    data = orjson.loads(content)
    cls = model_class(data.get("resourceType", ""))
    if cls is None:
        raise ValueError(f"no FHIR model for {data.get('resourceType')!r}")
    text = cls.model_validate(data).model_dump_xml(pretty_print=pretty)
    return text if isinstance(text, bytes) else text.encode()
