"""Subscriptions: their terms' guards, the webhook URL check and the lifecycle."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import SubscriptionStateError, SubscriptionTermsError
from domain.subscription import (
    Channel,
    Subscription,
    SubscriptionIndex,
    SubscriptionState,
    SubscriptionTerms,
    check_webhook_url,
    delivery_topic,
)

DATASET = "gd-shenzhen.traffic.road-speed"


def _terms(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "subscription_id": "sub-1",
        "partner_id": "hk-transport-department",
        "dataset_id": DATASET,
        "agreement_id": "sz-hk-speeds",
        "channel": "kafka",
    }
    raw.update(changes)
    return raw


def _subscription(channel: str = "webhook") -> Subscription:
    url = "https://partner.example/hooks/baylink" if channel == "webhook" else None
    terms = SubscriptionTerms.from_dict(_terms(channel=channel, webhook_url=url))
    return Subscription(terms.subscription_id, terms.as_dict(), "hk-transport-department")


def _state(subscription: Subscription) -> SubscriptionState:
    # A call, so that the checker does not narrow the state between transitions.
    return subscription.state


def test_terms_survive_their_dict_form() -> None:
    for channel in Channel:
        url = "https://partner.example/hook" if channel is Channel.WEBHOOK else None
        terms = SubscriptionTerms.from_dict(
            _terms(channel=channel.value, webhook_url=url, start_position=42)
        )

        assert SubscriptionTerms.from_dict(terms.as_dict()) == terms


def test_a_kafka_subscription_names_its_partners_delivery_topic() -> None:
    terms = SubscriptionTerms.from_dict(_terms())

    assert terms.topic == f"baylink.deliver.hk-transport-department.{DATASET}.v1"
    assert SubscriptionTerms.from_dict(_terms(channel="sse")).topic is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channel": "carrier-pigeon"}, "unknown channel 'carrier-pigeon'"),
        ({"channel": "webhook"}, "needs webhook_url"),
        ({"channel": "sse", "webhook_url": "https://x.example"}, "only for the webhook channel"),
        ({"subscription_id": "../etc"}, "a subscription id is"),
        ({"partner_id": " "}, "partner_id is required"),
        ({"agreement_id": ""}, "agreement_id is required"),
        ({"start_position": 0}, "start_position must be 1 or more"),
        ({"dataset_id": "a dataset with spaces"}, "do not make a valid Kafka topic name"),
    ],
)
def test_malformed_terms_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SubscriptionTermsError, match=message):
        SubscriptionTerms.from_dict(_terms(**changes))


def test_missing_terms_are_named() -> None:
    raw = _terms()
    del raw["agreement_id"]

    with pytest.raises(SubscriptionTermsError, match="agreement_id is required"):
        SubscriptionTerms.from_dict(raw)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://partner.example/hook", "expected http or https"),
        ("https:///hook", "no host"),
        ("https://user:secret@partner.example/hook", "user name or password"),
        ("https://partner.example/hook#part", "fragment"),
        ("https://partner.example:99999/hook", "Port out of range"),
        ("https://partner.example/ho ok", "spaces or control characters"),
        ("https://partner.example/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_unusable_webhook_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(SubscriptionTermsError, match=message):
        check_webhook_url(url)


_URL_LIKE = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(["https://", "http://", "ftp://", "https:/", ""]),
    st.sampled_from(["", "user@", "user:secret@"]),
    st.from_regex(r"[a-z0-9.-]{0,30}|\[::1\]", fullmatch=True),
    st.one_of(st.just(""), st.integers(-1, 70_000).map(lambda p: f":{p}")),
    st.text(max_size=40),
)


@given(st.one_of(st.text(max_size=300), _URL_LIKE))
def test_any_text_is_either_a_usable_webhook_url_or_refused_by_name(url: str) -> None:
    refusal: SubscriptionTermsError | None = None
    try:
        check_webhook_url(url)
    except SubscriptionTermsError as error:
        refusal = error
    if refusal is not None:
        assert str(refusal).startswith("webhook_url: ")
    else:
        assert url.startswith(("http://", "https://"))
        authority = re.split(r"[/?#]", url.split("://", 1)[1])[0]
        assert authority
        assert "@" not in authority
        assert not any(c.isspace() for c in url)


@given(
    partner=st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True),
    dataset=st.from_regex(
        r"[a-z0-9][a-z0-9-]{0,20}(\.[a-z0-9][a-z0-9-]{0,20}){1,3}", fullmatch=True
    ),
)
def test_delivery_topics_are_valid_kafka_names_unique_per_partner_and_dataset(
    partner: str, dataset: str
) -> None:
    topic = delivery_topic(partner, dataset)

    assert topic == f"baylink.deliver.{partner}.{dataset}.v1"
    assert len(topic) <= 249


def test_the_partner_pauses_resumes_and_cancels() -> None:
    subscription = _subscription("sse")

    subscription.pause("hk-transport-department", "maintenance window")
    assert _state(subscription) is SubscriptionState.PAUSED
    subscription.resume("hk-transport-department")
    assert _state(subscription) is SubscriptionState.ACTIVE
    subscription.cancel("hk-transport-department", "no longer needed")

    assert _state(subscription) is SubscriptionState.CANCELLED
    assert [h[0] for h in subscription.history] == ["active", "paused", "active", "cancelled"]
    with pytest.raises(SubscriptionStateError, match="is cancelled: cannot resume"):
        subscription.resume("hk-transport-department")


def test_a_failing_webhook_is_dead_lettered_with_its_reason_and_redriven() -> None:
    subscription = _subscription("webhook")

    subscription.dead_letter(position=1234, attempts=8, reason="HTTP 503 from partner.example")

    assert _state(subscription) is SubscriptionState.DEAD_LETTERED
    assert (subscription.dead_letter_position, subscription.dead_letter_attempts) == (1234, 8)
    assert subscription.history[-1] == ("dead-lettered", "relay", "HTTP 503 from partner.example")
    with pytest.raises(SubscriptionStateError, match="cannot pause"):
        subscription.pause("hk-transport-department", "")
    subscription.redrive("admin")
    assert _state(subscription) is SubscriptionState.ACTIVE


def test_only_webhooks_are_dead_lettered_or_have_a_secret() -> None:
    subscription = _subscription("kafka")

    with pytest.raises(SubscriptionStateError, match="only webhooks are dead-lettered"):
        subscription.dead_letter(position=1, attempts=1, reason="x")
    with pytest.raises(SubscriptionStateError, match="only webhooks have a signing secret"):
        subscription.rotate_secret("admin")


def test_rotating_the_webhook_secret_counts_versions() -> None:
    subscription = _subscription("webhook")

    assert subscription.secret_version == 1
    assert subscription.rotate_secret("hk-transport-department") == 2
    subscription.cancel("admin", "ended")
    with pytest.raises(SubscriptionStateError, match="cannot rotate the secret"):
        subscription.rotate_secret("hk-transport-department")


def test_a_stored_subscription_reads_back_the_same() -> None:
    app: Application[UUID] = Application()
    subscription = _subscription("webhook")
    subscription.rotate_secret("admin")
    subscription.dead_letter(position=7, attempts=3, reason="timeout")
    index = SubscriptionIndex()
    index.add(subscription.subscription_id)
    app.save(subscription, index)

    read: Subscription = app.repository.get(Subscription.create_id("sub-1"))
    read_index: SubscriptionIndex = app.repository.get(SubscriptionIndex.create_id())

    assert isinstance(read, Subscription)
    assert read.terms == subscription.terms
    assert (read.state, read.secret_version, read.dead_letter_position) == (
        SubscriptionState.DEAD_LETTERED,
        2,
        7,
    )
    assert read.history == subscription.history
    assert isinstance(read_index, SubscriptionIndex)
    assert read_index.subscription_ids == ["sub-1"]
