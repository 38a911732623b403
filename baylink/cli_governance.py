"""`baylink partner|whitelist|agreement ...`: partners and keys, the whitelist, agreements."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from baylink.cli_options import DataDir, EventStore, Json
from baylink.context import resolve_context
from baylink.errors import BaylinkCliError
from domain.agreement import AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.errors import DomainError
from domain.whitelist import WhitelistRule
from storage.catalog import Catalog
from storage.governance import AgreementInfo, Governance

partner_app = typer.Typer(help="Partners and their API keys.", no_args_is_help=True)
key_app = typer.Typer(help="A partner's API keys.", no_args_is_help=True)
whitelist_app = typer.Typer(help="The cross-border whitelist.", no_args_is_help=True)
agreement_app = typer.Typer(help="Sharing agreements and their lifecycle.", no_args_is_help=True)
partner_app.add_typer(key_app, name="key")

ADMIN = "admin"


def register(app: typer.Typer) -> None:
    app.add_typer(partner_app, name="partner")
    app.add_typer(whitelist_app, name="whitelist")
    app.add_typer(agreement_app, name="agreement")


@contextmanager
def _governance(
    data_dir: Path | None, event_store: str | None
) -> Iterator[tuple[Governance, Callable[[str], DatasetDefinition]]]:
    """The governance application and a dataset lookup, with domain errors as one line."""
    context = resolve_context(data_dir, None, event_store)
    governance = Governance(context.storage.event_store_url)
    catalog = Catalog(context.storage.event_store_url)
    try:
        yield governance, catalog.get
    except DomainError as error:
        raise BaylinkCliError(str(error)) from None
    finally:
        catalog.close()
        governance.close()


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaylinkCliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaylinkCliError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError:
        raise BaylinkCliError(f"{path}: not valid YAML") from None


def _from_file(path: Path, read: Callable[[Any], Any]) -> Any:
    document = _read_yaml(path)
    if not isinstance(document, dict):
        raise BaylinkCliError(f"{path}: expected a mapping at the top level")
    try:
        return read(document)
    except DomainError as error:
        raise BaylinkCliError(f"{path}: {error}") from None


# partner


@partner_app.command("add")
def add_partner(
    region: Annotated[str, typer.Option(help="Region of the partner, e.g. hk.")],
    name: Annotated[str, typer.Option(help='Name, e.g. "Transport Department".')],
    clearance: Annotated[str, typer.Option(help="Highest classification it may see.")] = "public",
    scope: Annotated[
        list[str] | None, typer.Option(help="read, subscribe or audit; repeatable.")
    ] = None,
    partner_id: Annotated[
        str | None, typer.Option("--id", help="[default: from region and name]")
    ] = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """Register a partner and print its first API key (shown once, stored only hashed)."""
    with _governance(data_dir, event_store) as (governance, _):
        partner = governance.register_partner(
            region,
            name,
            Classification.parse(clearance),
            tuple(scope or ["read"]),
            partner_id,
        )
        issued = governance.issue_key(partner.partner_id)
    if as_json:
        typer.echo(
            json.dumps(
                {"partner_id": partner.partner_id, "key_id": issued.key_id, "key": issued.key}
            )
        )
        return
    typer.echo(f"registered partner {partner.partner_id} ({partner.name}, {partner.region})")
    typer.echo(f"API key {issued.key_id} (shown once; send as Authorization: Bearer <key>):")
    typer.echo(issued.key)


@partner_app.command("list")
def list_partners(
    data_dir: DataDir = None, event_store: EventStore = None, as_json: Json = False
) -> None:
    """Every partner with its region, clearance, scopes and active key ids."""
    with _governance(data_dir, event_store) as (governance, _):
        partners = governance.partners()
    rows = [
        {
            "partner_id": p.partner_id,
            "region": p.region,
            "name": p.name,
            "clearance": p.clearance.label,
            "scopes": list(p.scopes),
            "active_keys": list(p.active_keys),
        }
        for p in partners
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        typer.echo(
            f"{row['partner_id']}  {row['region']}  {row['name']}  clearance {row['clearance']}"
            f"  scopes {','.join(row['scopes'])}  keys {','.join(row['active_keys']) or '-'}"
        )


@key_app.command("rotate")
def rotate_key(
    partner_id: Annotated[str, typer.Argument()],
    key_id: Annotated[str, typer.Argument(help="The key to rotate out.")],
    overlap_minutes: Annotated[
        int, typer.Option(min=0, help="How long the old key keeps working.")
    ] = 60,
    data_dir: DataDir = None,
    event_store: EventStore = None,
) -> None:
    """Issue a new key; the old one keeps working for the overlap, then ends."""
    with _governance(data_dir, event_store) as (governance, _):
        issued = governance.rotate_key(partner_id, key_id, timedelta(minutes=overlap_minutes))
    typer.echo(f"new API key {issued.key_id} (shown once); {key_id} ends in {overlap_minutes} min:")
    typer.echo(issued.key)


@key_app.command("revoke")
def revoke_key(
    partner_id: Annotated[str, typer.Argument()],
    key_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
    data_dir: DataDir = None,
    event_store: EventStore = None,
) -> None:
    """End a key at once."""
    with _governance(data_dir, event_store) as (governance, _):
        governance.revoke_key(partner_id, key_id, reason)
    typer.echo(f"revoked key {key_id} of {partner_id}")


# whitelist


@whitelist_app.command("add")
def add_rule(
    file: Annotated[Path, typer.Argument(help="Whitelist rule (YAML).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what it would change.")
    ] = False,
    data_dir: DataDir = None,
    event_store: EventStore = None,
) -> None:
    """Add a whitelist rule (default deny: only rules let data cross a border)."""
    rule: WhitelistRule = _from_file(file, WhitelistRule.from_dict)
    with _governance(data_dir, event_store) as (governance, datasets):
        if dry_run:
            cut = governance.dry_run_add(rule, datasets)
            typer.echo(f"adding {rule.rule_id} would cut {len(cut)} agreements")
            return
        version = governance.add_rule(rule)
    typer.echo(f"added whitelist rule {rule.rule_id}; whitelist version {version}")


@whitelist_app.command("withdraw")
def withdraw_rule(
    rule_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why the rule is withdrawn.")] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the agreements it would cut.")
    ] = False,
    data_dir: DataDir = None,
    event_store: EventStore = None,
) -> None:
    """Withdraw a rule; agreements that relied on it lose access at once."""
    with _governance(data_dir, event_store) as (governance, datasets):
        if dry_run:
            cut = governance.dry_run_withdraw(rule_id, datasets)
            typer.echo(f"withdrawing {rule_id} would cut {len(cut)} agreements")
            for item in cut:
                typer.echo(
                    f"  {item.agreement_id} on {item.dataset_id}: {item.before} -> {item.after}"
                )
            return
        version = governance.withdraw_rule(rule_id, reason)
    typer.echo(f"withdrew whitelist rule {rule_id}; whitelist version {version}")


@whitelist_app.command("list")
def list_rules(
    data_dir: DataDir = None, event_store: EventStore = None, as_json: Json = False
) -> None:
    """The rules in force and the whitelist version."""
    with _governance(data_dir, event_store) as (governance, _):
        view = governance.whitelist()
    if as_json:
        typer.echo(
            json.dumps({"version": view.version, "rules": [r.as_dict() for r in view.rules]})
        )
        return
    typer.echo(f"whitelist version {view.version}: {len(view.rules)} rules")
    for r in view.rules:
        what = r.dataset_id or f"kind {r.dataset_kind}"
        typer.echo(
            f"  {r.rule_id}: {r.source_jurisdiction} -> {r.destination_jurisdiction}, {what}, "
            f"up to {r.max_classification.label}, purposes {','.join(sorted(r.purposes))}, "
            f"personal {'yes' if r.personal_data else 'no'}, basis {r.legal_basis}"
        )


# agreement


def _describe(info: AgreementInfo) -> dict[str, Any]:
    return {
        **info.terms.as_dict(),
        "state": info.state.value,
        "whitelist_rules": list(info.whitelist_rules),
        "history": [list(step) for step in info.history],
    }


@agreement_app.command("propose")
def propose(
    file: Annotated[Path, typer.Argument(help="Agreement terms (YAML).")],
    by: Annotated[str, typer.Option(help="Who proposes it.")] = ADMIN,
    data_dir: DataDir = None,
    event_store: EventStore = None,
) -> None:
    """Propose an agreement from its terms; it then needs approve, accept and activate."""
    terms: AgreementTerms = _from_file(file, AgreementTerms.from_dict)
    with _governance(data_dir, event_store) as (governance, datasets):
        info = governance.propose(terms, by, datasets)
    typer.echo(f"proposed agreement {info.terms.agreement_id}")


def _transition(name: str, needs_reason: bool = False) -> None:
    def command(
        agreement_id: Annotated[str, typer.Argument()],
        by: Annotated[str, typer.Option(help="Who acts.")] = ADMIN,
        reason: Annotated[str, typer.Option(help="Why (suspend and revoke).")] = "",
        data_dir: DataDir = None,
        event_store: EventStore = None,
    ) -> None:
        with _governance(data_dir, event_store) as (governance, datasets):
            actions: dict[str, Callable[[], AgreementInfo]] = {
                "approve": lambda: governance.approve(agreement_id, by),
                "accept": lambda: governance.accept(agreement_id, by),
                "activate": lambda: governance.activate(agreement_id, by, datasets),
                "suspend": lambda: governance.suspend(agreement_id, by, reason),
                "resume": lambda: governance.resume(agreement_id, by, datasets),
                "revoke": lambda: governance.revoke(agreement_id, by, reason),
            }
            info = actions[name]()
        typer.echo(f"agreement {agreement_id} is {info.state.value}")

    command.__doc__ = f"{name.capitalize()} an agreement." + (
        " Give --reason." if needs_reason else ""
    )
    agreement_app.command(name)(command)


for _name in ("approve", "accept", "activate", "resume"):
    _transition(_name)
for _name in ("suspend", "revoke"):
    _transition(_name, needs_reason=True)


@agreement_app.command("list")
def list_agreements(
    partner: Annotated[str | None, typer.Option(help="Only this consumer partner's.")] = None,
    data_dir: DataDir = None,
    event_store: EventStore = None,
    as_json: Json = False,
) -> None:
    """Agreements with their state."""
    with _governance(data_dir, event_store) as (governance, _):
        infos = governance.agreements(partner)
    if as_json:
        typer.echo(json.dumps([_describe(i) for i in infos], ensure_ascii=False))
        return
    for info in infos:
        t = info.terms
        typer.echo(
            f"{t.agreement_id}: {info.state.value}, {t.provider_region} -> {t.consumer_partner}, "
            f"{','.join(sorted(t.datasets))}, purpose {t.purpose}"
        )


@agreement_app.command("show")
def show_agreement(
    agreement_id: Annotated[str, typer.Argument()],
    data_dir: DataDir = None,
    event_store: EventStore = None,
) -> None:
    """An agreement's terms, state and history as JSON."""
    with _governance(data_dir, event_store) as (governance, _):
        info = governance.agreement(agreement_id)
    typer.echo(json.dumps(_describe(info), ensure_ascii=False, indent=2))
