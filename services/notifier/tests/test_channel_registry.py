"""The channel registry without a database: which channels the settings open, what CL-8407
names when they are missing, and how each channel class checks its endpoint."""

from __future__ import annotations

import httpx
import pytest
from closedloop.errors import FhirError
from notifier.channels import Channel, ChannelUnusable, Notification
from notifier.channels.base import ChannelDeps
from notifier.channels.email import EmailChannel
from notifier.channels.registry import CHANNELS, channel_setup, open_channels
from notifier.channels.rest_hook import RestHookChannel
from notifier.channels.sms import SmsChannel
from notifier.settings import Settings
from notifier.subscriptions.ssrf import EndpointPolicy

SMS = {
    "sms_api_url": "https://sms.example.test",
    "sms_account_sid": "AC1",
    "sms_auth_token": "tok",
    "sms_from": "+15550001111",
}


def test_each_code_names_its_class() -> None:
    assert {code: cls.code for code, cls in CHANNELS.items()} == {c: c for c in CHANNELS}
    assert list(CHANNELS) == ["rest-hook", "email", "sms"]


class TestChannelSetup:
    def test_nothing_set_names_every_missing_setting(self) -> None:
        setup = channel_setup(Settings())
        assert setup.problem("rest-hook") is None
        assert setup.problem("email") == (
            "the email channel is not configured on this server (set NOTIFIER_SMTP_HOST)"
        )
        assert setup.missing["sms"] == (
            "NOTIFIER_SMS_API_URL",
            "NOTIFIER_SMS_ACCOUNT_SID",
            "NOTIFIER_SMS_AUTH_TOKEN",
            "NOTIFIER_SMS_FROM",
        )

    def test_a_partly_set_channel_names_only_what_is_left(self) -> None:
        setup = channel_setup(Settings(smtp_host="127.0.0.1", sms_api_url=SMS["sms_api_url"]))
        assert setup.problem("email") is None
        assert "NOTIFIER_SMS_API_URL" not in setup.missing["sms"]
        assert "NOTIFIER_SMS_FROM" in setup.missing["sms"]


class TestOpenChannels:
    async def test_only_configured_channels_open(self) -> None:
        async with httpx.AsyncClient() as http:
            deps = ChannelDeps(http, EndpointPolicy(), "http://127.0.0.1:1/fhir", None)
            channels = open_channels(Settings(smtp_host="127.0.0.1"), deps)
            assert set(channels.opened) == {"rest-hook", "email"}
            assert isinstance(channels.opened["email"], EmailChannel)
            channels = open_channels(Settings(**SMS), deps)
            assert isinstance(channels.opened["sms"], SmsChannel)

    async def test_sending_on_an_unopened_channel_is_unusable(self) -> None:
        async with httpx.AsyncClient() as http:
            deps = ChannelDeps(http, EndpointPolicy(), "http://127.0.0.1:1/fhir", None)
            channels = open_channels(Settings(), deps)
        spec = type("Spec", (), {"channel": "sms"})()
        message = ("referral-new", None)
        notification = Notification(spec, "s1", {}, [], None, message)  # type: ignore[arg-type]
        with pytest.raises(ChannelUnusable, match="NOTIFIER_SMS_FROM"):
            await channels.send(notification)


class TestCheckEndpoint:
    @pytest.mark.parametrize(
        ("channel", "endpoint", "code"),
        [
            (EmailChannel, "tel:+15551234567", "CL-8400"),  # the wrong scheme
            (EmailChannel, "mailto:a@b.test%0d%0aBcc:c@d.test", "CL-8405"),
            (EmailChannel, "mailto:a@b.test,c@d.test", "CL-8405"),
            (SmsChannel, "mailto:a@b.test", "CL-8400"),
            (SmsChannel, "tel:5551234567", "CL-8405"),  # no country code
            (RestHookChannel, "http://127.0.0.1/hook", "CL-8404"),  # loopback is not allowed
        ],
    )
    def test_refused(self, channel: type[Channel], endpoint: str, code: str) -> None:
        with pytest.raises(FhirError) as caught:
            channel.check_endpoint(endpoint, EndpointPolicy(resolver=lambda _h: ["127.0.0.1"]))
        assert caught.value.status == 400
        assert caught.value.issues[0].cl_code == code
        assert caught.value.issues[0].expression == ("Subscription.channel.endpoint",)

    @pytest.mark.parametrize(
        ("channel", "endpoint"),
        [(EmailChannel, "mailto:intake@foodbank.test"), (SmsChannel, "tel:+1 (555) 123-4567")],
    )
    def test_accepted(self, channel: type[Channel], endpoint: str) -> None:
        channel.check_endpoint(endpoint, EndpointPolicy())
