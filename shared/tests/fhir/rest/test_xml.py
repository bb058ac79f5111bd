"""FHIR XML through HTTP: bodies in (create, update, transaction), answers out (read, search,
history, batch-response, errors) by ``Accept`` or ``_format``; hostile XML is a 400 in XML."""

from __future__ import annotations

import uuid

import httpx
from lxml import etree

NS = "{http://hl7.org/fhir}"
XML = "application/fhir+xml"
SEND = {"Content-Type": XML, "Accept": XML}
TAG = uuid.uuid4().hex[:8]


def patient(family: str, gender: str = "female") -> bytes:
    return (
        f'<Patient xmlns="http://hl7.org/fhir"><name><family value="{family}"/>'
        f'<given value="Ana"/></name><gender value="{gender}"/></Patient>'
    ).encode()


def root(r: httpx.Response) -> etree._Element:
    assert r.headers["content-type"].startswith(XML), r.text
    return etree.fromstring(r.content)


def value(el: etree._Element, path: str) -> str:
    found = el.find("/".join(NS + p for p in path.split("/")))
    assert found is not None, etree.tostring(el)
    return str(found.get("value"))


def outcome_code(r: httpx.Response) -> str:
    doc = root(r)
    assert etree.QName(doc).localname == "OperationOutcome"
    return value(doc, "issue/details/coding/code")


async def total(client: httpx.AsyncClient, family: str) -> int:
    r = await client.get(f"/fhir/Patient?family={family}&_count=0")
    return int(r.json()["total"])


async def test_create_read_update_in_xml(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", content=patient(f"X{TAG}"), headers=SEND)
    assert r.status_code == 201, r.text
    created = root(r)
    pid = value(created, "id")
    assert value(created, "name/family") == f"X{TAG}"
    # JSON stays the default, and the stored resource is the same one
    r = await client.get(f"/fhir/Patient/{pid}")
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert r.json()["name"][0]["family"] == f"X{TAG}"
    # Accept on a plain read (the fast path hands it over), _format on the full path
    for r in [
        await client.get(f"/fhir/Patient/{pid}", headers={"Accept": XML}),
        await client.get(f"/fhir/Patient/{pid}?_format=xml"),
        await client.get(f"/fhir/Patient/{pid}?_format=application/fhir+xml&_pretty=true"),
    ]:
        assert r.status_code == 200 and value(root(r), "gender") == "female"
    body = patient(f"X{TAG}", "male").replace(b"<name>", f'<id value="{pid}"/><name>'.encode())
    r = await client.put(f"/fhir/Patient/{pid}", content=body, headers=SEND)
    assert r.status_code == 200, r.text
    assert value(root(r), "meta/versionId") == "2" and value(root(r), "gender") == "male"
    r = await client.get(f"/fhir/Patient/{pid}/_history", headers={"Accept": XML})
    assert value(root(r), "type") == "history"


async def test_search_in_xml(client: httpx.AsyncClient) -> None:
    family = f"S{TAG}"
    for _ in range(2):
        await client.post("/fhir/Patient", content=patient(family), headers=SEND)
    r = await client.get(f"/fhir/Patient?family={family}", headers={"Accept": XML})
    bundle = root(r)
    assert value(bundle, "type") == "searchset"
    entries = bundle.findall(f"{NS}entry")
    assert len(entries) == 2
    assert all(e.find(f"{NS}resource/{NS}Patient") is not None for e in entries)
    r = await client.get(f"/fhir/Patient?family={family}&_count=0&_format=xml")
    assert value(root(r), "total") == "2" and not root(r).findall(f"{NS}entry")


async def test_transaction_in_xml(client: httpx.AsyncClient) -> None:
    family = f"T{TAG}"
    body = (
        '<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>'
        f"<entry><resource>{patient(family).decode()}</resource>"
        '<request><method value="POST"/><url value="Patient"/></request></entry></Bundle>'
    )
    r = await client.post("/fhir", content=body.encode(), headers=SEND)
    assert r.status_code == 200, r.text
    assert value(root(r), "type") == "transaction-response"
    assert await total(client, family) == 1


async def test_bad_xml_is_a_400_in_xml_and_stores_nothing(client: httpx.AsyncClient) -> None:
    family = f"B{TAG}"
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        f'<Patient xmlns="http://hl7.org/fhir"><name><family value="{family}&c;"/></name>'
        "</Patient>"
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        f'<Patient xmlns="http://hl7.org/fhir"><name><family value="{family}&e;"/></name>'
        "</Patient>"
    )
    for body in [
        patient(family)[:-5],  # cut short
        bomb.encode(),
        external.encode(),
        patient(family).replace(b'xmlns="http://hl7.org/fhir"', b""),
        patient(family).replace(b"<gender", b'<bogus value="1"/><gender'),
    ]:
        r = await client.post("/fhir/Patient", content=body, headers=SEND)
        assert r.status_code == 400, r.text
        assert outcome_code(r) == "CL-1010"
        assert b"root:" not in r.content
    # the same error in JSON for a JSON client
    r = await client.post(
        "/fhir/Patient", content=patient(family)[:-5], headers={"Content-Type": XML}
    )
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    assert await total(client, family) == 0


async def test_errors_and_metadata_in_xml(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient/nope", headers={"Accept": XML})
    assert r.status_code == 404 and outcome_code(r)
    r = await client.get("/fhir/Patient?_format=yaml")
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/metadata", headers={"Accept": f"{XML}, application/fhir+json"})
    formats = [f.get("value") for f in root(r).findall(f"{NS}format")]
    assert XML in formats and "application/fhir+json" in formats
