"""`baylink status`: a live view of a running platform, from its services' metrics."""

from __future__ import annotations

import json
import time
from typing import Annotated

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from baylink.cli_options import DataDir, Json
from baylink.errors import BaylinkCliError
from baylink.runtime.state import RuntimeState, resolve_data_dir
from baylink.status_model import PlatformStatus, Samples, parse_metrics, platform_status

_SCRAPE_TIMEOUT = 2.0


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    data_dir: DataDir = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            metavar="NAME=URL",
            help="A service's Prometheus endpoint, for a platform not started by `baylink up` "
            "(repeatable). [default: those the running platform recorded]",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.2, help="Seconds between refreshes (and rate samples).")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one view and exit.")] = False,
    as_json: Json = False,
) -> None:
    """Throughput, lag, rejections, snapshot age and API latency, refreshed until Ctrl-C."""
    endpoints = _endpoints(data_dir, metrics)
    with httpx.Client(timeout=_SCRAPE_TIMEOUT) as client:
        earlier = _scrape(client, endpoints)
        started = time.monotonic()
        if once or as_json:
            time.sleep(interval)
            view = platform_status(_scrape(client, endpoints), earlier, time.monotonic() - started)
            if as_json:
                typer.echo(json.dumps(view.as_dict(), sort_keys=True))
            else:
                Console().print(_render(view))
            return
        with Live(_render(platform_status(earlier)), refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                now = time.monotonic()
                current = _scrape(client, endpoints)
                live.update(_render(platform_status(current, earlier, now - started)))
                earlier, started = current, now


def _endpoints(data_dir: DataDir, given: list[str] | None) -> dict[str, str]:
    if given:
        endpoints = {}
        for item in given:
            name, separator, url = item.partition("=")
            if not separator or not name or not url.startswith(("http://", "https://")):
                raise BaylinkCliError(f"--metrics {item!r}: expected NAME=http://HOST:PORT/metrics")
            endpoints[name] = url
        return endpoints
    state = RuntimeState.read(resolve_data_dir(data_dir))
    if not state.metrics_urls:
        raise BaylinkCliError(
            "the running platform recorded no metrics endpoints; pass --metrics NAME=URL"
        )
    return dict(state.metrics_urls)


def _scrape(client: httpx.Client, endpoints: dict[str, str]) -> dict[str, Samples | None]:
    pages: dict[str, Samples | None] = {}
    for name, url in endpoints.items():
        try:
            response = client.get(url)
            response.raise_for_status()
            pages[name] = parse_metrics(response.text)
        except (httpx.HTTPError, ValueError):
            pages[name] = None  # shown as down; the next refresh tries again
    return pages


def _render(view: PlatformStatus) -> Group:
    services = Table(title="services", title_justify="left")
    services.add_column("service")
    services.add_column("metrics")
    for name, state in sorted(view.components.items()):
        services.add_row(name, state if state == "up" else f"[red]{state}[/red]")

    datasets = Table(title="datasets", title_justify="left")
    for column in ("dataset", "accepted", "records/s", "rejected", "duplicates", "snapshot age"):
        datasets.add_column(column, justify="left" if column == "dataset" else "right")
    for name, entry in sorted(view.datasets.items()):
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(entry.rejections.items()))
        datasets.add_row(
            name,
            f"{entry.accepted:,}",
            "-" if entry.records_per_second is None else f"{entry.records_per_second:,.1f}",
            f"{entry.rejected:,}" + (f" ({reasons})" if reasons else ""),
            f"{entry.duplicates:,}",
            "-" if entry.snapshot_age_seconds is None else f"{entry.snapshot_age_seconds:,.0f} s",
        )

    lag = Table(title=f"consumer lag (total {view.total_lag:,})", title_justify="left")
    for column in ("topic", "partition", "lag", "store"):
        lag.add_column(column, justify="left" if column in ("topic", "store") else "right")
    partitions = sorted({(t, p) for t, p, _ in view.lag} | view.stalled.keys())
    behind = {(t, p): n for t, p, n in view.lag}
    for topic, partition in partitions:
        attempts = view.stalled.get((topic, partition))
        lag.add_row(
            topic,
            str(partition),
            f"{behind[(topic, partition)]:,}" if (topic, partition) in behind else "-",
            "ok" if attempts is None else f"[red]failing, {attempts} attempts[/red]",
        )

    api = Table(title="api", title_justify="left")
    for column in ("route", "status", "requests", "mean ms"):
        api.add_column(column, justify="left" if column == "route" else "right")
    for route in view.routes:
        api.add_row(route.route, route.status, f"{route.requests:,}", f"{route.mean_ms:,.1f}")
    return Group(services, datasets, lag, api)
