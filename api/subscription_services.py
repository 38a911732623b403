"""The stores subscriptions are served from, opened on first use and closed at shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from api.errors import StoreUnavailableError
from api.log_watch import LogWatch
from storage.delivery_feed import DeliveryFeed
from storage.delivery_log import DeliveryLog
from storage.delivery_tail import TailState
from storage.subscriptions import Subscriptions

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

    def _catch_up(self) -> TailState:
        return self.feed.tail.catch_up()

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
