"""The SSRF guard against hostile endpoints: every spelling of a forbidden address is refused
when the Subscription is written (both databases, through the API), a name that resolves
somewhere forbidden only later is refused when the client connects (DNS rebinding), redirects
are not a way round it, and email/sms endpoints cannot smuggle control characters."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closedloop.errors import FhirError
from closedloop.testing import LoopbackServer, Receiver, app_client
from notifier.app import create_app
from notifier.settings import Settings
from notifier.subscriptions.guarded_http import EndpointRefused, guarded_client
from notifier.subscriptions.ssrf import EndpointPolicy

from .test_subscriptions import (
    EVENTS_AUTH,
    EVENTS_TOKEN,
    FHIR_JSON,
    params,
    subscription,
    task_event,
)

PUBLIC = "93.184.216.34"


class FakeDns:
    """A resolver tests control: names map to addresses; anything else does not resolve."""

    def __init__(self, **names: list[str]) -> None:
        self.names = {k.replace("_", "."): v for k, v in names.items()}
        self.calls = 0

    def __call__(self, host: str) -> list[str]:
        self.calls += 1
        if host.rstrip(".") not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        return list(self.names[host.rstrip(".")])


# every one means loopback, link-local, a reserved address, or is no valid endpoint at all
BYPASSES = [
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://[::ffff:127.0.0.1]:8080/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    "http://[64:ff9b::127.0.0.1]/",
    "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://[2002:7f00:1::]/",
    "http://[::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::]/",
    "http://2130706433/",  # decimal
    "http://2852039166/",  # 169.254.169.254
    "http://0x7f000001/",  # hex
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0177.0.0.1/",  # octal
    "http://0251.0376.0251.0376/",
    "http://127.1/",  # short
    "http://169.254.43518/",
    "http://127.0.0.1./",  # trailing dot
    "http://0x7f.1/",  # mixed
    "http://0177.0x0.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://100.64.0.1/",  # shared address space
    "http://224.0.0.1/",
    "http://1.2.3.4.5/",
    "http://public.test.1/",
    "http://%31%32%37.0.0.1/",
    "http://127.0.0.1%0d%0a/",
    "http://public.test/%0d%0a\r\nX: y",
    "http://public.test:0/",
    "http://public.test:65536/",
    "http://public.test:99999/",
    "http://public.test:-1/",
    "http://public.test:+80/",
    "http://public.test:80x/",
    "http://[::1/",
    "ftp://public.test/",
    "http://user@public.test\\@127.0.0.1/",
    "http://rebound.test/",  # a name that resolves to a forbidden address
    "http://mixed.test/",  # one public and one forbidden address: refused
    "http://nowhere.test/",
]


def dns() -> FakeDns:
    return FakeDns(
        public_test=[PUBLIC],
        rebound_test=["::ffff:169.254.169.254"],
        mixed_test=[PUBLIC, "10.0.0.1", "fe80::1%eth0"],
    )


@pytest.mark.parametrize("url", BYPASSES)
def test_every_spelling_of_a_forbidden_address_is_refused(url: str) -> None:
    # private addresses allowed: link-local, loopback and reserved ones still are not
    policy = EndpointPolicy(allow_private=True, resolver=dns())
    with pytest.raises(FhirError) as err:
        policy.check(url)
    assert err.value.status == 400
    assert err.value.issues[0].cl_code in ("CL-8401", "CL-8403", "CL-8404"), str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://public.test/hook",
        "http://public.test:8080/hook",
        "http://public.test./hook",
        f"http://{PUBLIC}/",
        "http://[2606:2800:220:1:248:1893:25c8:1946]:443/",
        f"http://[::ffff:{PUBLIC}]/",
        "http://1572395042/",  # 93.184.216.34 in decimal
        "http://10.1.2.3/",  # private, allowed here
        "http://[::ffff:10.1.2.3]/",
    ],
)
def test_public_and_allowed_addresses_pass(url: str) -> None:
    EndpointPolicy(allow_private=True, resolver=dns()).check(url)


def test_loopback_only_when_allowed() -> None:
    for url in ("http://[::ffff:127.0.0.1]:9/", "http://2130706433:9/", "http://127.1:9/"):
        with pytest.raises(FhirError, match="loopback"):
            EndpointPolicy(allow_private=True, resolver=dns()).check(url)
        EndpointPolicy(allow_loopback=True, resolver=dns()).check(url)


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        allow_private_endpoints=True,
        referral_url="http://referrals.test/fhir",
        delivery_enabled=False,  # only writes are judged here; TestConnect delivers
        # email and sms configured (never used): a channel without settings is refused
        smtp_host="127.0.0.1",
        sms_api_url="https://sms.example.test",
        sms_account_sid="AC123",
        sms_auth_token="tok",
        sms_from="+15550001111",
    )
    async with app_client(create_app(settings, resolver=dns())) as c:
        yield c


class TestWritten:
    @pytest.mark.parametrize("url", BYPASSES)
    async def test_refused_and_not_stored(self, client: httpx.AsyncClient, url: str) -> None:
        before = (await client.get("/fhir/Subscription?_summary=count")).json()["total"]
        r = await client.post("/fhir/Subscription", json=subscription(url), headers=FHIR_JSON)
        assert r.status_code == 400, r.text
        issue = r.json()["issue"][0]
        assert issue["expression"] == ["Subscription.channel.endpoint"]
        after = (await client.get("/fhir/Subscription?_summary=count")).json()["total"]
        assert after == before

    async def test_a_mapped_loopback_receiver_gets_nothing(self, client: httpx.AsyncClient) -> None:
        async with Receiver() as rx:
            url = f"http://[::ffff:127.0.0.1]:{rx.port}/events"
            r = await client.post("/fhir/Subscription", json=subscription(url), headers=FHIR_JSON)
            assert r.status_code == 400
            assert "loopback" in r.json()["issue"][0]["diagnostics"]
            await asyncio.sleep(0.3)
            assert rx.received == []

    @pytest.mark.parametrize(
        ("channel", "endpoint"),
        [
            ("email", "mailto:a@b.test%0d%0aBcc:%20x@evil.test"),
            ("email", "mailto:a@b.test\r\nBcc: x@evil.test"),
            ("email", "mailto:a@b.test%0a"),
            ("email", "mailto:a@b.test?subject=%0d%0aBcc:x@evil.test"),
            ("email", "mailto:a@b.test,x@evil.test"),
            ("email", "mailto:%00a@b.test"),
            ("sms", "tel:+15551234567%0d%0a"),
            ("sms", "tel:+15551234567\n&To=+15550000000"),
            ("sms", "tel:+15551234567%26To%3D%2B1555"),
            ("sms", "tel:555-1234"),
        ],
    )
    async def test_contact_endpoints_without_control_characters(
        self, client: httpx.AsyncClient, channel: str, endpoint: str
    ) -> None:
        body = subscription("http://unused.test/", filter_=None)
        body["channel"] = {"type": channel, "endpoint": endpoint}
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 400, r.text
        assert endpoint not in r.text  # personal data is not echoed

    @pytest.mark.parametrize(
        ("channel", "endpoint"),
        [("email", "mailto:intake@foodbank.test"), ("sms", "tel:+1 (555) 123-4567")],
    )
    async def test_good_contact_endpoints_pass(
        self, client: httpx.AsyncClient, channel: str, endpoint: str
    ) -> None:
        body = subscription("http://unused.test/", filter_=None)
        body["channel"] = {"type": channel, "endpoint": endpoint}
        r = await client.post("/fhir/Subscription", json=body, headers=FHIR_JSON)
        assert r.status_code == 201, r.text


class TestConnect:
    async def test_the_address_checked_is_the_address_connected_to(self) -> None:
        """``hooks.rebind.test`` exists only in the fake DNS: the post arrives because the
        client connects to the address the guard checked, with the name as the Host."""
        fake = FakeDns(hooks_rebind_test=["127.0.0.1"])
        policy = EndpointPolicy(allow_loopback=True, resolver=fake)
        async with Receiver() as rx, guarded_client(policy) as http:
            url = f"http://hooks.rebind.test:{rx.port}/events"
            policy.check(url)
            r = await http.post(url, json={"n": 1})
            assert r.status_code == 200
            headers, _ = rx.received[0]
            assert headers["host"] == f"hooks.rebind.test:{rx.port}"

    async def test_a_name_rebound_after_the_check_is_refused(self) -> None:
        fake = FakeDns(hooks_rebind_test=["127.0.0.1"])
        policy = EndpointPolicy(allow_loopback=True, resolver=fake)
        async with Receiver() as rx, guarded_client(policy) as http:
            url = f"http://hooks.rebind.test:{rx.port}/events"
            policy.check(url)  # at creation: loopback, allowed here
            for forbidden in (["169.254.169.254"], ["127.0.0.1", "::ffff:10.0.0.7"], ["::"]):
                fake.names["hooks.rebind.test"] = forbidden
                with pytest.raises(EndpointRefused) as err:
                    await http.post(url, json={"n": 1})
                assert "refused" in str(err.value)
            assert rx.received == []

    async def test_redirects_are_judged_too(self) -> None:
        """The client follows no redirect; even one that asked to would have every hop
        judged."""
        policy = EndpointPolicy(allow_loopback=True, resolver=FakeDns())
        target = "http://[::ffff:169.254.169.254]/latest"
        async with Redirector(target) as redirector, guarded_client(policy) as http:
            assert http.follow_redirects is False
            r = await http.post(redirector.url, json={})
            assert r.status_code == 307  # not followed
            with pytest.raises(EndpointRefused, match="link-local"):
                await http.post(redirector.url, json={}, follow_redirects=True)

    async def test_a_subscription_follows_its_name_not_a_new_answer(
        self, database_url: str
    ) -> None:
        """Through the API: the handshake reaches the address the name had when checked;
        once the name points at cloud metadata, nothing more is delivered."""
        fake = FakeDns(hooks_rebind_test=["127.0.0.1"])
        settings = Settings(
            database_url=database_url,
            allow_loopback_endpoints=True,
            delivery_poll_seconds=0.05,
            retry_initial_seconds=0.05,
            referral_url="http://referrals.test/fhir",
            events_token=EVENTS_TOKEN,
        )
        app = create_app(settings, resolver=fake)
        async with Receiver() as rx, app_client(app, headers=EVENTS_AUTH) as c:
            url = f"http://hooks.rebind.test:{rx.port}/events"
            r = await c.post("/fhir/Subscription", json=subscription(url), headers=FHIR_JSON)
            assert r.status_code == 201, r.text
            handshake = (await rx.wait_for(1))[0]
            assert params(handshake)["type"][0]["valueCode"] == "handshake"
            fake.names["hooks.rebind.test"] = ["169.254.169.254"]
            event = task_event("t-rebind", "requested", 1, interaction="create")
            assert (await c.post("/events", json=event)).status_code == 200
            await asyncio.sleep(0.5)
            assert len(rx.received) == 1


class Redirector(LoopbackServer):
    """A loopback server answering every request with a 307 to ``target``."""

    path = "/hook"

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"location", self.target.encode())]
        await send({"type": "http.response.start", "status": 307, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
