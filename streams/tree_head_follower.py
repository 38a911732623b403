"""The tree-head follower: keeps the Merkle log's signed heads up with the event log.

It runs as a thread of the snapshot follower's process (`baylink snapshots follow`, which
`baylink up` supervises): both follow the log on a timer and neither is on the ingest path, so
no new child process, port or restart policy is needed.
"""

from __future__ import annotations

import logging
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.head_timestamps import TimestampAuthority
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder

log = logging.getLogger("baylink.streams.tree_heads")
_POLL_SECONDS = 1.0
_RETRY_SECONDS = 5.0


def follow_tree_heads(
    event_store_url: str,
    key: Ed25519PrivateKey,
    every_events: int,
    every_seconds: float,
    stop: threading.Event,
    tsa: TimestampAuthority | None = None,
) -> None:
    """Record signed tree heads (timestamped by ``tsa``, if given) until ``stop`` is set."""
    ledger = TreeHeadLedger(event_store_url)
    recorder: TreeHeadRecorder | None = None
    try:
        while not stop.is_set():
            try:
                # Made (and remade after a failure) here: it resumes from the last head.
                recorder = recorder or TreeHeadRecorder(
                    ledger, key, every_events, every_seconds, tsa=tsa
                )
                for head in recorder.run_once():
                    log.info(
                        "signed tree head %d (root %s, log position %d%s)",
                        head.tree_size,
                        head.root.hex(),
                        head.last_position,
                        ", timestamped" if head.timestamp_token else "",
                    )
            except Exception:
                # A passing store error must not end the heads while snapshots carry on.
                log.exception("recording tree heads failed; retrying in %s s", _RETRY_SECONDS)
                recorder = None
                stop.wait(_RETRY_SECONDS)
                continue
            stop.wait(min(_POLL_SECONDS, every_seconds))
    finally:
        ledger.close()


def start_tree_heads(
    event_store_url: str,
    key: Ed25519PrivateKey,
    every_events: int,
    every_seconds: float,
    stop: threading.Event,
    tsa: TimestampAuthority | None = None,
) -> threading.Thread:
    thread = threading.Thread(
        target=follow_tree_heads,
        args=(event_store_url, key, every_events, every_seconds, stop, tsa),
        name="baylink-tree-heads",
        daemon=True,
    )
    thread.start()
    return thread
