"""`baylink audit`: the Merkle log's signed tree heads, and inclusion and consistency proofs
against them, read from the platform's event store (ADR 17). ``--json`` prints what the audit
API answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from api.audit_schemas import ConsistencyProofModel, InclusionProofModel, SignedTreeHeadModel
from baylink.cli_options import DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from domain.errors import DomainError
from domain.tree_head_log import TreeHeadLog
from storage.errors import StorageError
from storage.tree_heads import TreeHeadLedger

audit_app = typer.Typer(
    help="Signed tree heads of the event history, and proofs against them.",
    no_args_is_help=True,
)
_NO_HEADS = (
    "no signed tree head is recorded yet: `baylink up` records one every "
    "BAYLINK_STORAGE_TREE_HEAD_EVERY_EVENTS events or _EVERY_SECONDS seconds"
)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@contextmanager
def _ledger(data_dir: DataDir, event_store: EventStore) -> Iterator[TreeHeadLedger]:
    context = resolve_context(data_dir, None, event_store)
    ledger = TreeHeadLedger(context.storage.event_store_url)
    try:
        yield ledger
    except (DomainError, StorageError) as error:
        raise BaylinkCliError(str(error)) from None
    finally:
        ledger.close()


def _head_line(head: TreeHeadLog.Recorded) -> str:
    return (
        f"tree head {head.tree_size} (log position {head.last_position}), "
        f"signed {head.timestamp.isoformat()} by key {head.key_id[:16]}\n"
        f"  root      {head.root.hex()}\n"
        f"  signature {head.signature.hex()}"
    )


@audit_app.command("head")
def head(data_dir: DataDir = None, event_store: EventStore = None, as_json: Json = False) -> None:
    """The newest signed tree head."""
    with _ledger(data_dir, event_store) as ledger:
        latest = ledger.latest()
    if latest is None:
        raise BaylinkCliError(_NO_HEADS)
    typer.echo(SignedTreeHeadModel.of(latest).model_dump_json() if as_json else _head_line(latest))


@audit_app.command("prove")
def prove(
    position: Annotated[int, typer.Argument(min=1, help="Log position of the event.")],
    tree_size: Annotated[
        int | None,
        typer.Option(min=1, help="Size of a signed head. [default: the newest head]"),
    ] = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """The inclusion proof of the event at POSITION in the tree of a signed head."""
    with _ledger(data_dir, event_store) as ledger:
        if tree_size is None:
            latest = ledger.latest()
            if latest is None:
                raise BaylinkCliError(_NO_HEADS)
            tree_size = latest.tree_size
        proof = ledger.inclusion(position, tree_size)
    leaf = proof.leaf
    if as_json:
        typer.echo(InclusionProofModel.of(proof).model_dump_json())
        return
    typer.echo(_head_line(proof.head))
    typer.echo(
        f"event at log position {leaf.position}: {leaf.topic} "
        f"{leaf.originator_id} v{leaf.originator_version}\n"
        f"  leaf {proof.index}, hash {leaf.hash().hex()}\n"
        f"  audit path ({len(proof.path)} hashes, bottom up):"
    )
    for sibling in proof.path:
        typer.echo(f"    {sibling.hex()}")


@audit_app.command("prove-consistency")
def prove_consistency(
    first: Annotated[int, typer.Argument(min=1, help="Size of the older signed head.")],
    second: Annotated[int, typer.Argument(min=1, help="Size of the newer signed head.")],
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """The proof that the tree of the signed head of FIRST leaves is a prefix of SECOND's."""
    with _ledger(data_dir, event_store) as ledger:
        proof = ledger.consistency(first, second)
    if as_json:
        typer.echo(ConsistencyProofModel.of(proof).model_dump_json())
        return
    typer.echo(_head_line(proof.first))
    typer.echo(_head_line(proof.second))
    typer.echo(f"  consistency path ({len(proof.path)} hashes):")
    for node in proof.path:
        typer.echo(f"    {node.hex()}")
