"""The stores subscriptions are served from, opened on first use and closed at shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from api.errors import StoreUnavailableError
from api.log_watch import LogWatch
from api.sent_pages import Sent, SentPages
from storage.delivery_feed import DeliveryFeed
from storage.delivery_log import DeliveryLog
from storage.delivery_tail import TailState
from storage.subscriptions import SubscriptionInfo, Subscriptions

_log = logging.getLogger("baylink.api")
T = TypeVar("T")


class SubscriptionServices:
    """The subscriptions application, the delivery log and the delivery feed of one store."""

    def __init__(self, event_store_url: str, pseudonym_secret: bytes) -> None:
        self.event_store_url = event_store_url
        self.platform_secret = pseudonym_secret
        self._subscriptions: Subscriptions | None = None
        self._log: DeliveryLog | None = None
        self._feed: DeliveryFeed | None = None
        self._lock = threading.Lock()
        # The feed is opened on first use, in a thread: the watch reaches it lazily.
        self.watch = LogWatch(self._catch_up)
        self.sent_pages = SentPages(self._record_sent)
        self._infos: dict[str, SubscriptionInfo] = {}
        self._infos_version = -1

    @property
    def subscriptions(self) -> Subscriptions:
        with self._lock:
            if self._subscriptions is None:
                self._subscriptions = _opened(lambda: Subscriptions(self.event_store_url))
            return self._subscriptions

    @property
    def log(self) -> DeliveryLog:
        with self._lock:
            if self._log is None:
                self._log = _opened(lambda: DeliveryLog(self.event_store_url))
            return self._log

    @property
    def feed(self) -> DeliveryFeed:
        with self._lock:
            if self._feed is None:
                self._feed = _opened(
                    lambda: DeliveryFeed(self.event_store_url, self.platform_secret)
                )
            return self._feed

    def subscription_now(
        self, subscription_id: str, tail: TailState | None = None
    ) -> SubscriptionInfo:
        """The subscription as stored now. Kept while the log holds nothing new that is not
        data (a pause, resumption or cancellation is such a change): the streams ask before
        every page, and a subscription's history is replayed only when it may have changed.
        ``tail``: a state of the tail read after this call was asked for."""
        version = (tail or self.feed.tail.catch_up()).policy_version
        with self._lock:
            if version > self._infos_version:
                self._infos_version = version
                self._infos.clear()
            kept = self._infos.get(subscription_id) if version == self._infos_version else None
        if kept is not None:
            return kept
        info = self.subscriptions.subscription(subscription_id)
        with self._lock:
            if version == self._infos_version:
                self._infos[subscription_id] = info
        return info

    def kept_subscription(self, subscription_id: str, tail: TailState) -> SubscriptionInfo | None:
        """``subscription_now`` as of ``tail`` if kept (no store access); else None."""
        with self._lock:
            if tail.policy_version != self._infos_version:
                return None
            return self._infos.get(subscription_id)

    def _catch_up(self) -> TailState:
        return self.feed.tail.catch_up()

    def _record_sent(self, sent: list[Sent]) -> None:
        self.log.record_untracked(sent)

    @property
    def opened_feed(self) -> DeliveryFeed | None:
        """The feed if it is open already (never opens it: safe on the event loop)."""
        return self._feed

    def close(self) -> None:
        with self._lock:
            for opened in (self._subscriptions, self._log, self._feed):
                if opened is not None:
                    opened.close()
            self._subscriptions = self._log = self._feed = None


def _opened(open_it: Callable[[], T]) -> T:
    try:
        return open_it()
    except Exception as error:
        _log.exception("cannot open the event store")
        raise StoreUnavailableError(
            "the event store cannot be opened; the server log says why"
        ) from error
