"""Every request about subscriptions goes into the access log, like every data request: who,
which action, on which dataset and under which agreement, answered or refused and why.

A server-sent stream is logged as it opens, a WebSocket as it closes (its route returns then);
what either delivers is in the delivery log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.dependencies import PrincipalDep, access_log
from storage.subscriptions import SubscriptionInfo

# Route name -> the action the access log names.
ACTIONS = {
    "subscribe": "subscription-create",
    "list_subscriptions": "subscriptions",
    "get_subscription": "subscription",
    "pause": "subscription-pause",
    "resume": "subscription-resume",
    "cancel": "subscription-cancel",
    "redrive": "subscription-redrive",
    "subscription_events": "subscription-events",
    "subscription_socket": "subscription-socket",
}


@dataclass
class SubscriptionAccess:
    """What a request was about, filled in as it is learnt."""

    dataset_id: str | None = None
    agreement_id: str | None = None
    rows: int = 0

    def about(self, info: SubscriptionInfo) -> None:
        self.dataset_id, self.agreement_id = info.terms.dataset_id, info.terms.agreement_id


def current_access(connection: HTTPConnection) -> SubscriptionAccess:
    """The request's access record, or a detached one outside an audited route."""
    access = getattr(connection.state, "subscription_access", None)
    return access if isinstance(access, SubscriptionAccess) else SubscriptionAccess()


def _audited(connection: HTTPConnection, principal: PrincipalDep) -> Iterator[None]:
    route = connection.scope.get("route")
    action = ACTIONS.get(getattr(route, "name", ""), "subscriptions")
    access = SubscriptionAccess()
    connection.state.subscription_access = access
    reason, allowed = "subscription", True
    try:
        yield
    except Exception as error:
        reason, allowed = f"{type(error).__name__}: {error}"[:500], False
        raise
    finally:
        access_log(connection).record(
            principal.caller,
            action,
            None,
            rows=access.rows if allowed else 0,
            reason=reason,
            dataset_id=access.dataset_id,
            allowed=allowed,
            agreement_id=access.agreement_id,
        )


# Exits when the route function returns, which for server-sent events is before streaming.
AUDITED = Depends(_audited, scope="function")
