"""Reads a Subscription resource into a ``SubscriptionSpec`` and refuses (400, naming the
element) anything the server cannot honour: unknown topics, filters the topic cannot filter by
or larger than the limits below, channels and payloads it does not support, unsafe endpoints,
addresses that can never be sent to (``contacts``), and channels this server has no settings
for.

Filters are bounded because every event is matched against every subscription's filters in the
intake's transaction: at most ``MAX_FILTER_CRITERIA`` parameters over all of a subscription's
filters, each with at most ``MAX_FILTER_VALUES`` comma-separated values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from closedloop import errors
from closedloop.fhir.search.engine import SearchEngine
from closedloop.fhir.search.query import split_values

from notifier.channels.setup import ChannelSetup
from notifier.subscriptions.contacts import check_contact
from notifier.subscriptions.ssrf import EndpointPolicy
from notifier.topics import TOPICS, Topic

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
FILTER_EXT = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_EXT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_EXT = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT_EXT = f"{BACKPORT}/backport-timeout"
MAX_COUNT_EXT = f"{BACKPORT}/backport-max-count"
CHANNEL_TYPE_EXT = f"{BACKPORT}/backport-channel-type"
SECRET_EXT = "urn:closedloop:fhir:subscription-secret"  # moved out of the stored resource
AUDIENCE_EXT = "urn:closedloop:fhir:subscription-audience"  # cbo | patient | clinician

PAYLOADS = ("empty", "id-only", "full-resource")
MAX_FILTER_CRITERIA = 20  # parameters over all of a subscription's filters
MAX_FILTER_VALUES = 50  # comma-separated values of one filter parameter


@dataclass(frozen=True)
class SubscriptionSpec:
    topic: Topic
    filters: tuple[str, ...]  # query strings on the topic's resource type, ANDed
    channel: str  # rest-hook | email | sms
    endpoint: str
    headers: tuple[str, ...]
    payload: str  # empty | id-only | full-resource
    heartbeat_seconds: int | None
    timeout_seconds: int
    max_count: int
    audience: str


def _ext(element: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(element, dict):
        return []
    return [
        e for e in element.get("extension") or [] if isinstance(e, dict) and e.get("url") == url
    ]


def _value(exts: list[dict[str, Any]]) -> Any:
    for e in exts:
        for key, value in e.items():
            if key.startswith("value"):
                return value
    return None


def bad(text: str, where: str) -> errors.FhirError:
    return errors.invalid(text, (where,), cl_code="CL-8400")


Pairs = list[tuple[str, str]]


def filter_size_problem(filters: list[Pairs]) -> str | None:
    """Why filters (each a list of query pairs) are larger than this server evaluates; None
    when they are not. Measured on the text, before any parsing, so this limit speaks first
    (a chained parameter's values are its comma list too)."""
    pairs = [pair for f in filters for pair in f]
    if len(pairs) > MAX_FILTER_CRITERIA:
        return (
            f"the filters have {len(pairs)} parameters; at most {MAX_FILTER_CRITERIA} are "
            "allowed over all filters"
        )
    for name, value in pairs:
        count = len(split_values(value))
        if count > MAX_FILTER_VALUES:
            return (
                f"filter parameter {name.split(':')[0].split('.')[0]!r} has {count} values; "
                f"at most {MAX_FILTER_VALUES} are allowed per parameter"
            )
    return None


def check_channel_ready(channel: str, setup: ChannelSetup) -> None:
    """400 when this server has no settings for ``channel`` (they are named)."""
    problem = setup.problem(channel)
    if problem:
        raise errors.invalid(
            f"Channel type {channel} cannot be used: {problem}",
            ("Subscription.channel.type",),
            cl_code="CL-8407",
        )


def channel_type(sub: dict[str, Any]) -> str:
    """The channel a Subscription asks for: ``channel.type``, or the Backport IG's custom
    channel type extension when it carries one."""
    channel_el = sub.get("channel") or {}
    ctype = str(channel_el.get("type") or "")
    custom = _value(_ext(channel_el.get("_type") or {}, CHANNEL_TYPE_EXT)) or _value(
        _ext(channel_el, CHANNEL_TYPE_EXT)
    )
    if isinstance(custom, dict):
        ctype = str(custom.get("code") or ctype)
    return ctype


def read_spec(
    sub: dict[str, Any], search: SearchEngine, endpoints: EndpointPolicy
) -> SubscriptionSpec:
    topic = TOPICS.get(str(sub.get("criteria")))
    if topic is None:
        raise bad(
            f"Unknown subscription topic {sub.get('criteria')!r}; this server offers: "
            + ", ".join(TOPICS),
            "Subscription.criteria",
        )
    filters = []
    raw: list[Pairs] = []
    for f in _ext(sub.get("_criteria"), FILTER_EXT):
        text = str(f.get("valueString") or "")
        rtype, _, query = text.partition("?")
        if not query or rtype != topic.resource_type:
            raise bad(
                f"Filter {text!r} must read {topic.resource_type}?param=value",
                "Subscription.criteria.extension",
            )
        pairs = parse_qsl(query, keep_blank_values=True)
        for name, _ in pairs:
            code = name.split(":")[0]
            if code not in topic.can_filter_by:
                raise bad(
                    f"The {topic.resource_type} topic cannot filter by {code!r} (it can "
                    f"by {', '.join(topic.can_filter_by)})",
                    "Subscription.criteria.extension",
                )
        raw.append(pairs)
        too_large = filter_size_problem(raw)
        if too_large:
            raise errors.invalid(
                f"Filters too large: {too_large}",
                ("Subscription.criteria.extension",),
                cl_code="CL-8406",
            )
        try:  # the same parser as searches: a bad value is refused now, not at delivery
            search.parse(topic.resource_type, pairs, strict=True)
        except errors.FhirError as exc:
            if exc.issues and exc.issues[0].code == "too-costly":  # the search's own caps
                raise errors.invalid(
                    f"Filters too large: filter {text[:80]!r}: {exc}",
                    ("Subscription.criteria.extension",),
                    cl_code="CL-8406",
                ) from None
            raise bad(f"Filter {text!r}: {exc}", "Subscription.criteria.extension") from None
        try:
            search.check(topic.resource_type, pairs)  # builds their SQL conditions too
        except errors.FhirError as exc:
            raise bad(f"Filter {text!r}: {exc}", "Subscription.criteria.extension") from None
        filters.append(query)
    channel_el = sub.get("channel") or {}
    if channel_el.get("type") == "message":
        raise bad(
            "Channel type message is not supported (rest-hook, email, sms are)",
            "Subscription.channel.type",
        )
    ctype = channel_type(sub)
    if ctype not in ("rest-hook", "email", "sms"):
        raise bad(
            f"Channel type {ctype!r} is not supported (rest-hook, email, sms are)",
            "Subscription.channel.type",
        )
    endpoint = str(channel_el.get("endpoint") or "")
    if ctype == "rest-hook":
        endpoints.check(endpoint, "Subscription.channel.endpoint")
    elif ctype == "email" and not endpoint.startswith("mailto:"):
        raise bad("An email channel needs a mailto: endpoint", "Subscription.channel.endpoint")
    elif ctype == "sms" and not endpoint.startswith("tel:"):
        raise bad("An sms channel needs a tel: endpoint", "Subscription.channel.endpoint")
    check_contact(ctype, endpoint)  # one address or number, no control characters
    payload = str(_value(_ext(channel_el.get("_payload"), PAYLOAD_EXT)) or "id-only")
    if payload not in PAYLOADS:
        raise bad(
            f"Payload content {payload!r} is not supported ({', '.join(PAYLOADS)})",
            "Subscription.channel.payload",
        )
    if ctype == "sms":
        payload = "empty"  # the IG: an sms notification carries no Bundle
    mime = channel_el.get("payload")
    if ctype == "rest-hook" and mime not in (None, "application/fhir+json", "application/json"):
        raise bad(
            f"Payload type {mime!r} is not supported: use application/fhir+json",
            "Subscription.channel.payload",
        )
    heartbeat = _value(_ext(channel_el, HEARTBEAT_EXT))
    timeout = _value(_ext(channel_el, TIMEOUT_EXT)) or 10
    max_count = _value(_ext(channel_el, MAX_COUNT_EXT)) or 1
    audience = str(_value(_ext(sub, AUDIENCE_EXT)) or ("patient" if ctype == "sms" else "cbo"))
    if audience not in ("cbo", "patient", "clinician"):
        raise bad(
            "The audience extension takes cbo, patient or clinician", "Subscription.extension"
        )
    return SubscriptionSpec(
        topic,
        tuple(filters),
        ctype,
        endpoint,
        tuple(str(h) for h in channel_el.get("header") or []),
        payload,
        int(heartbeat) if heartbeat else None,
        int(timeout),
        int(max_count),
        audience,
    )
