"""A stand-in for the Kafka producer that refuses a set number of sends and keeps the rest."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka.errors import KafkaConnectionError


@dataclass
class _Metadata:
    partition: int
    offset: int


@dataclass
class FlakyProducer:
    """Stands in for the Kafka producer: refuses the first ``failures`` sends, keeps the rest."""

    failures: int
    sent: list[list[Any]] = field(default_factory=list)
    headers: list[dict[str, bytes]] = field(default_factory=list)
    refused: int = 0

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        partition: int,
        headers: list[tuple[str, bytes]] | None = None,
        **_: Any,
    ) -> Any:
        if self.refused < self.failures:
            self.refused += 1
            raise KafkaConnectionError("broker unreachable (test)")
        self.sent.append(msgspec.msgpack.decode(value))
        self.headers.append(dict(headers or []))
        done: asyncio.Future[_Metadata] = asyncio.get_running_loop().create_future()
        done.set_result(_Metadata(partition, len(self.sent)))
        return done

    def sensor_ids(self) -> set[str]:
        # Each sent value is a batch of rows; a row is a list with the key fields' values.
        return {str(value) for batch in self.sent for row in batch for value in _values(row)}


def _values(row: Any) -> list[Any]:
    return list(row.values()) if isinstance(row, dict) else list(row)
