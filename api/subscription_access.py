"""Who may see and change a subscription, and how far its delivery has come.

A partner sees only its own subscriptions: another's answers exactly as one that does not
exist. The administrator sees and changes every subscription.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.requests import HTTPConnection

from api.auth import Principal
from api.dependencies import PrincipalDep
from api.errors import UnknownSubscriptionError
from api.services import LedgerProvider
from api.subscription_audit import current_access
from api.subscription_schemas import DeliveryProgress, StateChange, SubscriptionView
from api.subscription_services import SubscriptionServices
from domain.errors import SubscriptionNotFoundError
from domain.subscription import Channel
from storage.delivery_log import RecentDeliveries
from storage.governance import Governance
from storage.subscriptions import SubscriptionInfo, webhook_secret

SUBSCRIPTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
RATE_WINDOW = timedelta(minutes=1)
_RELAYED = frozenset({Channel.KAFKA, Channel.WEBHOOK})


def subscription_services(request: Request) -> SubscriptionServices:
    services: SubscriptionServices = request.app.state.subscription_services
    return services


def _governance(request: Request) -> Governance:
    provider: LedgerProvider[Governance] = request.app.state.governance
    return provider.get()


GovernanceDep = Annotated[Governance, Depends(_governance)]
ServicesDep = Annotated[SubscriptionServices, Depends(subscription_services)]
SubscriptionId = Annotated[
    str,
    Path(
        pattern=SUBSCRIPTION_ID_PATTERN,
        description="The id given when subscribing, e.g. sub-0123456789abcdef.",
    ),
]


def unknown_subscription(subscription_id: str) -> UnknownSubscriptionError:
    """The one answer for a subscription that does not exist or is another partner's."""
    return UnknownSubscriptionError(f"no subscription {subscription_id!r}")


def visible_subscription(
    services: SubscriptionServices, principal: Principal, subscription_id: str
) -> SubscriptionInfo:
    try:
        info = services.subscriptions.subscription(subscription_id)
    except SubscriptionNotFoundError:
        raise unknown_subscription(subscription_id) from None
    if not principal.admin and info.terms.partner_id != principal.caller.partner_id:
        raise unknown_subscription(subscription_id)
    return info


def owned_subscription(
    connection: HTTPConnection,
    subscription_id: SubscriptionId,
    principal: PrincipalDep,
    services: ServicesDep,
) -> SubscriptionInfo:
    info = visible_subscription(services, principal, subscription_id)
    current_access(connection).about(info)
    return info


OwnedSubscription = Annotated[SubscriptionInfo, Depends(owned_subscription)]


def views(
    services: SubscriptionServices,
    infos: list[SubscriptionInfo],
    *,
    show_secret: bool = False,
) -> list[SubscriptionView]:
    """The subscriptions as answered, with their delivery progress read in one pass."""
    if not infos:
        return []
    head = services.feed.head()
    recent = services.log.recent_progress(datetime.now(UTC) - RATE_WINDOW)
    none = RecentDeliveries(0, 0)
    return [
        _view(services, info, head, recent.get(info.terms.subscription_id, none), show_secret)
        for info in infos
    ]


def _view(
    services: SubscriptionServices,
    info: SubscriptionInfo,
    head: int,
    recent: RecentDeliveries,
    show_secret: bool,
) -> SubscriptionView:
    terms = info.terms
    if terms.channel in _RELAYED:
        delivered = services.log.delivered_up_to(terms.subscription_id)
    else:
        # Streams note how far they sent at most once a second; the last minute's deliveries
        # say the rest.
        noted = services.log.streamed_up_to(terms.subscription_id)
        delivered = max(noted, recent.furthest_position)
    delivered = max(delivered, terms.start_position - 1)
    webhook = terms.channel is Channel.WEBHOOK
    secret = None
    if webhook and show_secret:
        secret = webhook_secret(
            services.platform_secret, terms.subscription_id, info.secret_version
        )
    return SubscriptionView(
        subscription_id=terms.subscription_id,
        partner_id=terms.partner_id,
        dataset_id=terms.dataset_id,
        agreement_id=terms.agreement_id,
        channel=terms.channel,
        state=info.state,
        webhook_url=terms.webhook_url,
        topic=terms.topic,
        start_position=terms.start_position,
        secret_version=info.secret_version if webhook else None,
        dead_letter_position=info.dead_letter_position,
        history=[StateChange(state=s, by=b, reason=r) for s, b, r in info.history],
        delivery=DeliveryProgress(
            head_position=head,
            delivered_position=delivered,
            lag=max(0, head - delivered),
            records_last_minute=recent.records,
        ),
        signing_secret=secret,
    )
