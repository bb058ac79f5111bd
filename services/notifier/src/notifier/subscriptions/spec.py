"""Reads a Subscription resource into a ``SubscriptionSpec`` and refuses (400, naming the
element) anything the server cannot honour: unknown topics, filters the topic cannot filter by
or larger than the limits below, channels and payloads it does not support, unsafe endpoints,
addresses that can never be sent to (each channel class checks its own endpoints), and
channels this server has no settings for.

Filters are bounded because every event is matched against every subscription's filters in the
intake's transaction: at most ``MAX_FILTER_CRITERIA`` parameters over all of a subscription's
filters, each with at most ``MAX_FILTER_VALUES`` comma-separated values."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from closedloop import errors
from closedloop.fhir.search.engine import SearchEngine
from closedloop.fhir.search.query import split_values

from notifier.channels.base import Channel, bad
from notifier.channels.registry import CHANNELS, ChannelSetup
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
FILTER_AT = "Subscription.criteria.extension"


@dataclass(frozen=True)
class SubscriptionSpec:
    topic: Topic
    filters: tuple[str, ...]  # query strings on the topic's resource type, ANDed
    channel: str  # a code in the channel registry: rest-hook | email | sms
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
    """The one reading of a Subscription, in the order its elements are refused: topic,
    filters, channel (the registry's class checks the endpoint and payload type), payload,
    audience. A client's write and the worker's re-read of the stored resource both come
    here, so a rule added here holds for both."""
    topic = _topic(sub)
    filters = _filters(sub, topic, search)
    channel_el = sub.get("channel") or {}
    channel = _channel(sub)
    endpoint = str(channel_el.get("endpoint") or "")
    channel.check_endpoint(endpoint, endpoints)
    payload = _payload(channel_el, channel)
    heartbeat = _value(_ext(channel_el, HEARTBEAT_EXT))
    timeout = _value(_ext(channel_el, TIMEOUT_EXT)) or 10
    max_count = _value(_ext(channel_el, MAX_COUNT_EXT)) or 1
    audience = str(_value(_ext(sub, AUDIENCE_EXT)) or channel.default_audience)
    if audience not in ("cbo", "patient", "clinician"):
        raise bad(
            "The audience extension takes cbo, patient or clinician", "Subscription.extension"
        )
    return SubscriptionSpec(
        topic,
        filters,
        channel.code,
        endpoint,
        tuple(str(h) for h in channel_el.get("header") or []),
        payload,
        int(heartbeat) if heartbeat else None,
        int(timeout),
        int(max_count),
        audience,
    )


def _topic(sub: dict[str, Any]) -> Topic:
    topic = TOPICS.get(str(sub.get("criteria")))
    if topic is None:
        raise bad(
            f"Unknown subscription topic {sub.get('criteria')!r}; this server offers: "
            + ", ".join(TOPICS),
            "Subscription.criteria",
        )
    return topic


def _filters(sub: dict[str, Any], topic: Topic, search: SearchEngine) -> tuple[str, ...]:
    """The filter criteria's query strings, each refused now if the topic cannot filter by a
    parameter, the filters grow too large, or the search parser would refuse it at delivery."""
    filters = []
    raw: list[Pairs] = []
    for f in _ext(sub.get("_criteria"), FILTER_EXT):
        text = str(f.get("valueString") or "")
        rtype, _, query = text.partition("?")
        if not query or rtype != topic.resource_type:
            raise bad(f"Filter {text!r} must read {topic.resource_type}?param=value", FILTER_AT)
        pairs = parse_qsl(query, keep_blank_values=True)
        _check_filter_names(topic, pairs)
        raw.append(pairs)
        too_large = filter_size_problem(raw)
        if too_large:
            raise errors.invalid(f"Filters too large: {too_large}", (FILTER_AT,), cl_code="CL-8406")
        _check_filter_search(topic, text, pairs, search)
        filters.append(query)
    return tuple(filters)


def _check_filter_names(topic: Topic, pairs: Pairs) -> None:
    for name, _ in pairs:
        code = name.split(":")[0]
        if code not in topic.can_filter_by:
            raise bad(
                f"The {topic.resource_type} topic cannot filter by {code!r} (it can "
                f"by {', '.join(topic.can_filter_by)})",
                FILTER_AT,
            )


# filter texts each engine has accepted: the delivery worker reads every subscription again
# before each round of work, and building a filter's SQL to check it costs more than the round
_ACCEPTED: weakref.WeakKeyDictionary[SearchEngine, set[tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)
_MAX_ACCEPTED = 10_000


def _check_filter_search(topic: Topic, text: str, pairs: Pairs, search: SearchEngine) -> None:
    """The same parser as searches: a bad value is refused now, not at delivery. (The
    answer depends only on the text and the engine's registry, so an accepted text is
    remembered.)"""
    accepted = _ACCEPTED.setdefault(search, set())
    if (topic.resource_type, text) in accepted:
        return
    _check_new_filter(topic, text, pairs, search)
    if len(accepted) >= _MAX_ACCEPTED:
        accepted.clear()
    accepted.add((topic.resource_type, text))


def _check_new_filter(topic: Topic, text: str, pairs: Pairs, search: SearchEngine) -> None:
    try:
        search.parse(topic.resource_type, pairs, strict=True)
    except errors.FhirError as exc:
        if exc.issues and exc.issues[0].code == "too-costly":  # the search's own caps
            raise errors.invalid(
                f"Filters too large: filter {text[:80]!r}: {exc}", (FILTER_AT,), cl_code="CL-8406"
            ) from None
        raise bad(f"Filter {text!r}: {exc}", FILTER_AT) from None
    try:
        search.check(topic.resource_type, pairs)  # builds their SQL conditions too
    except errors.FhirError as exc:
        raise bad(f"Filter {text!r}: {exc}", FILTER_AT) from None


def _channel(sub: dict[str, Any]) -> type[Channel]:
    """The registry's class for the channel the Subscription asks for."""
    ctype = channel_type(sub)
    if (sub.get("channel") or {}).get("type") == "message":  # whatever its extension says
        ctype = "message"
    channel = CHANNELS.get(ctype)
    if channel is None:
        shown = ctype if ctype == "message" else repr(ctype)
        raise bad(
            f"Channel type {shown} is not supported ({', '.join(CHANNELS)} are)",
            "Subscription.channel.type",
        )
    return channel


def _payload(channel_el: dict[str, Any], channel: type[Channel]) -> str:
    payload = str(_value(_ext(channel_el.get("_payload"), PAYLOAD_EXT)) or "id-only")
    if payload not in PAYLOADS:
        raise bad(
            f"Payload content {payload!r} is not supported ({', '.join(PAYLOADS)})",
            "Subscription.channel.payload",
        )
    if not channel.carries_bundle:
        payload = "empty"
    channel.check_payload_type(channel_el.get("payload"))
    return payload
