"""What the Merkle log costs: recording signed heads over N stored events, and serving an
inclusion and a consistency proof against the newest head (both recompute leaves from the
log, ADR 17).

    python benchmarks/tree_heads.py [--events N] [--every K] [--event-store URL]

The events are small ones of a stand-in aggregate, stored 1,000 per transaction; the leaf
hashes their stored state, so state size matters little next to reading the log.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

# Run as a file (python benchmarks/tree_heads.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate, event

from domain.merkle import verify_consistency, verify_inclusion
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder

NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"benchmark node").digest())


class Reading(Aggregate):
    @event("Taken")
    def take(self, value: int) -> None:
        self.value = value


def store(ledger: TreeHeadLedger, events: int) -> None:
    left = events
    while left:
        batch = min(left, 1000)
        reading = Reading()
        for value in range(batch - 1):
            reading.take(value)
        ledger.save(reading)
        left -= batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--event-store", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.event_store or f"sqlite:///{Path(tmp) / 'events.sqlite'}"
        ledger = TreeHeadLedger(url)
        try:
            began = time.perf_counter()
            store(ledger, args.events)
            print(f"stored {args.events} events in {time.perf_counter() - began:.2f} s")

            began = time.perf_counter()
            heads = TreeHeadRecorder(ledger, NODE_KEY, every_events=args.every).run_once()
            took = time.perf_counter() - began
            print(
                f"recorded {len(heads)} signed heads over {args.events} events in {took:.2f} s "
                f"({args.events / took:,.0f} events/s)"
            )
            newest, oldest = heads[-1], heads[0]
            middle = newest.last_position // 2

            began = time.perf_counter()
            proof = ledger.inclusion(middle, newest.tree_size)
            took = time.perf_counter() - began
            verify_inclusion(
                proof.leaf.hash(), proof.index, newest.tree_size, proof.path, newest.root
            )
            print(
                f"inclusion proof under head {newest.tree_size}, first (reads the log): "
                f"{took * 1000:.0f} ms"
            )
            began = time.perf_counter()
            for position in range(1, newest.last_position, newest.last_position // 10):
                ledger.inclusion(position, newest.tree_size)
            took = (time.perf_counter() - began) / 10
            print(f"inclusion proof, leaves kept: {took * 1000:.0f} ms")

            began = time.perf_counter()
            consistency = ledger.consistency(oldest.tree_size, newest.tree_size)
            took = time.perf_counter() - began
            verify_consistency(
                oldest.tree_size, newest.tree_size, oldest.root, newest.root, consistency.path
            )
            print(
                f"consistency proof {oldest.tree_size} -> {newest.tree_size}, leaves kept: "
                f"{took * 1000:.0f} ms"
            )
        finally:
            ledger.close()


if __name__ == "__main__":
    main()
