"""`baylink connector run`: every configured source, concurrently, until stopped.

Each source is one asyncio task that takes new payloads from its transport (HTTP poll,
directory scan, MQTT subscription), hands each to the ingest pipeline and, once the broker
has acknowledged its records, writes the source's checkpoint (HTTP, directory) or acks the
MQTT message. A failing source reports one line and is retried after a jittered, growing
delay; it never stops the others. A crash between publish and checkpoint re-publishes that
payload at the next start; the event store keeps each record id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob as globbing
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from connectors.backoff import Backoff
from connectors.config import ConnectorConfig, SourceConfig, Transport
from connectors.errors import ConnectorError, PayloadError
from connectors.formats import ParseOptions, format_named
from connectors.gtfs_static import GtfsStatic
from connectors.mqtt import MqttEndpoint, MqttMessage, MqttSubscription
from connectors.polling import HttpCheckpoint, HttpPoller
from connectors.source import FetchedPayload
from connectors.watch import DirectoryWatch, FileCheckpoint
from domain.errors import DomainError
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from storage.errors import StorageError
from streams import ingest_pipeline
from streams.ingest_pipeline import IngestResult, IngestTarget

tracer = trace.get_tracer("baylink.connectors")
log = logging.getLogger("baylink.connectors.runner")
Say = Callable[[str], None]
# Messages of one MQTT subscription being published at once; Mosquitto sends 20 unacked
# QoS 1 messages to a client by default, so more would wait anyway.
MQTT_MESSAGES_IN_FLIGHT = 16
# Errors a source survives: it reports them and tries again later.
_SOURCE_ERRORS = (ConnectorError, KafkaError, DomainError, StorageError, OSError)


@dataclass
class SourceStatus:
    """What one source has done so far."""

    name: str
    transport: str
    payloads: int = 0
    records: int = 0
    rejected_payloads: int = 0
    unchanged: int = 0
    failures: int = 0
    last_error: str | None = None


@dataclass
class RunnerServices:
    """What the runner shares between sources: the producer, the store, how to report."""

    producer: AIOKafkaProducer
    catalog: Catalog
    checkpoints: ConnectorCheckpoints
    batch_size: int
    say: Say
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class SourceRunner:
    """One source's loop; ``once`` makes a single pass over what is there now."""

    def __init__(self, source: SourceConfig, services: RunnerServices, *, once: bool) -> None:
        self.source = source
        self.services = services
        self.once = once
        self.status = SourceStatus(source.name, source.transport.value)
        self.retry = Backoff(base=source.retry.base, cap=source.retry.cap)

    async def run(self) -> SourceStatus:
        while not self.services.stop.is_set():
            try:
                await self._run_transport()
                return self.status  # one pass done, or stopping
            except _SOURCE_ERRORS as error:
                self._failed(error)
            except Exception as error:  # a source's bug must not stop the other sources
                log.exception("source %s failed", self.source.name)
                self._failed(error)
            if self.once:
                break
            delay = self.retry.next_delay()
            self.services.say(f"{self.source.name}: retrying in {delay:.1f}s")
            await self._pause(delay)
        return self.status

    async def _run_transport(self) -> None:
        target = await asyncio.to_thread(self._target)
        transport = self.source.transport
        if transport is Transport.HTTP:
            await self._poll_http(target)
        elif transport is Transport.MQTT:
            await self._subscribe_mqtt(target)
        else:
            await self._watch_files(target)

    def _target(self) -> IngestTarget:
        source = self.source
        definition = self.services.catalog.get(source.dataset)
        static = None
        if source.static_gtfs is not None:
            try:
                static = GtfsStatic.from_zip(source.static_gtfs.read_bytes())
            except OSError as error:
                raise ConnectorError(
                    f"cannot read static GTFS {source.static_gtfs}: {error.strerror or error}"
                ) from None
        options = ParseOptions(crs=source.crs, static_gtfs=static, **source.options)
        return IngestTarget(definition, format_named(source.format), options, source.region)

    # --- HTTP ---------------------------------------------------------------------------

    async def _poll_http(self, target: IngestTarget) -> None:
        source = self.source
        poller = HttpPoller(
            source.location,
            max_bytes=source.limits.max_bytes,
            timeout=source.limits.timeout,
            max_attempts=source.retry.attempts,
            backoff=Backoff(base=source.retry.base, cap=source.retry.cap),
            sleep=self._pause,
            stopping=self.services.stop.is_set,
        )
        target = dataclasses.replace(
            target,
            options=dataclasses.replace(target.options, source_name=_file_name(source.location)),
        )
        while not self.services.stop.is_set():
            previous = HttpCheckpoint.from_dict(self.services.checkpoints.get(source.name))
            result = await poller.poll(previous)
            if self.services.stop.is_set():
                return
            if result.payload is not None:
                await self._ingest(result.payload, target)
            else:
                self.status.unchanged += 1
            if result.checkpoint is not None and result.checkpoint != previous:
                self.services.checkpoints.put(source.name, "", result.checkpoint.as_dict())
            self.retry.reset()
            if self.once:
                return
            await self._pause(source.schedule.interval)

    # --- directory and file -------------------------------------------------------------

    async def _watch_files(self, target: IngestTarget) -> None:
        source = self.source
        if source.transport is Transport.FILE:
            directory, pattern = source.path.parent, globbing.escape(source.path.name)
        else:
            directory, pattern = source.path, source.glob or "*"
        watch = DirectoryWatch(
            Path(directory),
            pattern,
            max_bytes=source.limits.max_bytes,
            settle_seconds=source.schedule.settle,
        )
        while not self.services.stop.is_set():
            taken = self._taken_files()
            ready = await asyncio.to_thread(watch.scan, taken)
            if self.once:
                # A single pass still lets files settle: look again after the settle time.
                await self._pause(source.schedule.settle)
                ready += await asyncio.to_thread(watch.scan, taken)
            for item in ready:
                if self.services.stop.is_set():
                    return
                if item.error is not None:
                    self._failed(item.error, what=item.name)
                elif item.payload is not None:
                    options = dataclasses.replace(
                        target.options, source_name=item.name.rsplit("/", 1)[-1]
                    )
                    await self._ingest(item.payload, dataclasses.replace(target, options=options))
                else:
                    self.status.unchanged += 1
                self.services.checkpoints.put(source.name, item.name, item.checkpoint.as_dict())
            self.retry.reset()
            if self.once:
                return
            await self._pause(
                min(source.schedule.interval, max(source.schedule.settle, 0.1))
                if watch.pending
                else source.schedule.interval
            )

    def _taken_files(self) -> dict[str, FileCheckpoint]:
        taken: dict[str, FileCheckpoint] = {}
        for name, value in self.services.checkpoints.load(self.source.name).items():
            checkpoint = FileCheckpoint.from_dict(value)
            if checkpoint is not None:
                taken[name] = checkpoint
        return taken

    # --- MQTT ---------------------------------------------------------------------------

    async def _subscribe_mqtt(self, target: IngestTarget) -> None:
        source = self.source
        where = source.mqtt_location()
        subscription = MqttSubscription(
            MqttEndpoint(
                where.host,
                where.port,
                where.topic,
                source.mqtt_client_id,
                where.username,
                where.password,
            ),
            max_bytes=source.limits.max_bytes,
            connect_timeout=source.limits.timeout,
        )
        await subscription.start()
        self.services.say(f"{source.name}: subscribed to {subscription.uri} (QoS 1)")
        # Several messages are published at once (each acked when its own records are), so
        # the rate is not bound by one broker round trip per message.
        slots = asyncio.Semaphore(MQTT_MESSAGES_IN_FLIGHT)
        in_flight: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []
        broken = asyncio.Event()

        async def handle(message: MqttMessage) -> None:
            try:
                await self._ingest_message(message, target)
                subscription.ack(message)
            except Exception as error:
                # Left unacked: the broker delivers it again once we reconnect.
                failures.append(error)
                broken.set()
            finally:
                slots.release()

        try:
            # In a single pass, the queue is drained until it stays empty for the settle time.
            idle = max(source.schedule.settle, 1.0) if self.once else None
            while not self.services.stop.is_set() and not broken.is_set():
                await slots.acquire()
                message = await self._next_message(subscription, idle, broken)
                if message is None:
                    slots.release()
                    if self.once:
                        break
                    continue
                task = asyncio.create_task(handle(message))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.wait(in_flight)
            if failures:
                raise failures[0]
            self.retry.reset()
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            await subscription.stop()

    async def _next_message(
        self, subscription: MqttSubscription, idle: float | None, broken: asyncio.Event
    ) -> MqttMessage | None:
        """The next message; None when idle that long, stopping, or a publish failed."""
        get = asyncio.ensure_future(subscription.next_message())
        waits = [
            asyncio.ensure_future(self.services.stop.wait()),
            asyncio.ensure_future(broken.wait()),
        ]
        done, _ = await asyncio.wait(
            {get, *waits}, timeout=idle, return_when=asyncio.FIRST_COMPLETED
        )
        for wait in waits:
            wait.cancel()
        if get in done:
            return get.result()
        get.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await get
        return None

    async def _ingest_message(self, message: MqttMessage, target: IngestTarget) -> None:
        if message.error is None:
            await self._ingest(message.payload, target)
            return
        # Refused before parsing: still recorded in the store, as a rejected payload.
        await self._ingest(message.payload, target, refused=message.error)

    # --- common -------------------------------------------------------------------------

    async def _ingest(
        self, payload: FetchedPayload, target: IngestTarget, refused: PayloadError | None = None
    ) -> IngestResult:
        definition = target.definition
        with tracer.start_as_current_span(
            f"ingest {definition.id}",
            attributes={
                "baylink.dataset": definition.id,
                "baylink.connector": target.fmt.connector,
                "baylink.source": self.source.name,
            },
        ):
            if refused is None:
                result = await ingest_pipeline.ingest_payload(
                    self.services.producer,
                    payload,
                    target,
                    batch_size=self.services.batch_size,
                )
            else:
                result = await ingest_pipeline.publish_refused(
                    self.services.producer, payload, target, refused
                )
        self.status.payloads += 1
        self.status.records += result.report.rows
        where = payload.uri
        if result.parse_error is not None:
            self.status.rejected_payloads += 1
            self.services.say(
                f"{self.source.name}: {where}: {result.parse_error.message} "
                "(recorded as a rejected payload)"
            )
        else:
            self.services.say(
                f"{self.source.name}: published {result.report.rows} records "
                f"in {result.report.messages} messages from {where}"
            )
        for note in result.parsed.notes:
            self.services.say(f"{self.source.name}: {where}: {note}")
        return result

    def _failed(self, error: BaseException, what: str | None = None) -> None:
        self.status.failures += 1
        message = error.message if isinstance(error, PayloadError) else str(error)
        message = " ".join((message or type(error).__name__).split())
        self.status.last_error = message
        prefix = f"{self.source.name}: {what}: " if what else f"{self.source.name}: "
        self.services.say(f"{prefix}{message}")

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the runner is stopping."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.services.stop.wait(), seconds)


def _file_name(location: str) -> str | None:
    return Path(location.split("?", maxsplit=1)[0]).name or None


async def run_sources(
    config: ConnectorConfig,
    services: RunnerServices,
    *,
    once: bool,
    grace_seconds: float = 15.0,
) -> list[SourceStatus]:
    """Run every source until ``services.stop`` is set (or one pass each with ``once``)."""
    runners = [SourceRunner(source, services, once=once) for source in config.sources]
    for runner in runners:
        source = runner.source
        services.say(
            f"{source.name}: {source.transport.value} {source.location} -> {source.dataset} "
            f"({source.format})"
        )
    tasks = [asyncio.create_task(runner.run(), name=runner.source.name) for runner in runners]
    stopping: asyncio.Task[object] = asyncio.create_task(_wait_for(services.stop))
    await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
    while not all(task.done() for task in tasks) and not stopping.done():
        await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
    if stopping.done():
        # Stopping: sources finish the payload in hand, then are cancelled after the grace.
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
    stopping.cancel()
    await asyncio.gather(*tasks, stopping, return_exceptions=True)
    return [runner.status for runner in runners]


async def _wait_for(event: asyncio.Event) -> object:
    return await event.wait()
