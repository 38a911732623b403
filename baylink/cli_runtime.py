"""`baylink up` (broker, worker and API together) and `baylink api` (the HTTP API alone)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from baylink.runtime.admin_token import API_ADMIN_TOKEN_ENV, ensure_admin_token
from baylink.runtime.broker import MEMORY_STORAGE, TansuBroker
from baylink.runtime.errors import (
    AlreadyRunningError,
    RuntimeFailureError,
    RuntimeStateCorruptError,
    RuntimeStateNotFoundError,
)
from baylink.runtime.node_key import NODE_KEY_ENV, ensure_node_key_file
from baylink.runtime.ports import LOOPBACK, ensure_port_free, free_ports
from baylink.runtime.pseudonym_secret import PSEUDONYM_SECRET_ENV, ensure_pseudonym_secret
from baylink.runtime.state import DATA_DIR_ENV, RuntimeState, resolve_data_dir, state_path
from baylink.runtime.supervisor import ChildSpec, Supervisor
from baylink.telemetry_setup import METRICS_PORT_ENV, start_telemetry

logger = logging.getLogger(__name__)

BROKER_ENV = "BAYLINK_STREAMS_BROKER"
EPOCH_ENV = "BAYLINK_STREAMS_BROKER_EPOCH"
EVENT_STORE_ENV = "BAYLINK_STORAGE_EVENT_STORE_URL"
OBJECT_STORE_ENV = "BAYLINK_STORAGE_OBJECT_STORE_URL"

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Where events, objects, logs and runtime.json live. [default: ./var/baylink]",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add the runtime commands to the `baylink` command line."""
    app.command("up")(up)
    app.command("api")(serve_api)


def up(
    *,
    data_dir: DataDirOption = None,
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
    api_host: Annotated[str, typer.Option(help="Address the API listens on.")] = LOOPBACK,
    broker: Annotated[
        str | None,
        typer.Option(
            metavar="BOOTSTRAP",
            help="Use this external Kafka cluster instead of starting the embedded broker.",
        ),
    ] = None,
    broker_storage: Annotated[
        str, typer.Option(metavar="URL", help="Storage of the embedded broker: memory:// or s3://.")
    ] = MEMORY_STORAGE,
    event_store: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="sqlite:///PATH or postgresql://... [default: sqlite in the data dir]",
            show_default=False,
        ),
    ] = None,
    object_store: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="file://DIR or s3://... [default: objects/ in the data dir]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run broker, worker and API together until Ctrl-C or SIGTERM."""
    _show_runtime_logs()
    data_dir = resolve_data_dir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    _refuse_if_already_running(data_dir)
    admin_token, admin_token_file = ensure_admin_token(data_dir)
    pseudonym_secret = ensure_pseudonym_secret(data_dir)
    node_key_file = ensure_node_key_file(data_dir)
    _refuse_unsafe_admin_token(admin_token)
    # Checked before anything starts, so a taken port costs nothing to clean up.
    ensure_port_free(api_host, api_port)
    log_dir = data_dir / "logs"
    event_store_url = event_store or f"sqlite:///{data_dir / 'events.sqlite'}"
    object_store_url = object_store or (data_dir / "objects").as_uri()
    api_url = f"http://{api_host}:{api_port}"

    embedded = None if broker else TansuBroker(log_dir, storage_url=broker_storage)
    supervisor: Supervisor | None = None
    try:
        if embedded is not None:
            embedded.start()
        bootstrap = embedded.bootstrap if embedded is not None else str(broker)
        # A memory broker forgets its topics: positions from an earlier run must not count.
        epoch = uuid.uuid4().hex[:12] if embedded and broker_storage.startswith("memory") else ""
        env = {
            BROKER_ENV: bootstrap,
            EPOCH_ENV: epoch,
            EVENT_STORE_ENV: event_store_url,
            OBJECT_STORE_ENV: object_store_url,
            DATA_DIR_ENV: str(data_dir),
        }
        # Each service serves its metrics as Prometheus text on loopback; `status` reads them.
        worker_metrics, snapshots_metrics = free_ports(2)
        specs = _child_specs(env, api_host, api_port, log_dir, worker_metrics, snapshots_metrics)
        # Only the API holds the admin token; it and the relay share the pseudonym secret.
        specs[-1] = dataclasses.replace(
            specs[-1], env={**specs[-1].env, API_ADMIN_TOKEN_ENV: admin_token}
        )
        specs = [
            dataclasses.replace(s, env={**s.env, PSEUDONYM_SECRET_ENV: pseudonym_secret})
            if s.name in ("api", "relay")
            else s
            for s in specs
        ]
        # The snapshot follower signs the Merkle log's tree heads (ADR 17).
        specs = [
            dataclasses.replace(s, env={**s.env, NODE_KEY_ENV: str(node_key_file)})
            if s.name == "snapshots"
            else s
            for s in specs
        ]
        pids = {"supervisor": os.getpid()}
        if embedded is not None and embedded.pid is not None:
            pids["broker"] = embedded.pid
        state = RuntimeState(
            bootstrap,
            event_store_url,
            object_store_url,
            api_url,
            broker_epoch=epoch,
            pids=pids,
            metrics_urls={
                "worker": f"http://{LOOPBACK}:{worker_metrics}/metrics",
                "snapshots": f"http://{LOOPBACK}:{snapshots_metrics}/metrics",
                "api": f"{api_url}/metrics",
            },
        )

        def publish_pid(name: str, pid: int) -> None:
            # Restarted children get new pids; runtime.json must keep naming the live ones.
            nonlocal state
            state = dataclasses.replace(state, pids=state.pids | {name: pid})
            state.write(data_dir)

        supervisor = Supervisor(specs, on_start=publish_pid)
        supervisor.start()
        _print_summary(
            data_dir,
            state,
            supervisor.pids,
            log_dir,
            embedded_storage=(broker_storage if embedded else None),
            admin_token_file=admin_token_file,
        )
        exit_code = supervisor.run()
    finally:
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
        RuntimeState.remove(data_dir)
    typer.echo("baylink up: stopped")
    raise typer.Exit(exit_code)


def serve_api(
    *,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on. [env: BAYLINK_API_HOST; default: 127.0.0.1]"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port. [env: BAYLINK_API_PORT; default: 8000]"),
    ] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.auth import UnsafeSettingsError
    from api.settings import ApiSettings
    from streams.garbage_collection import tune_garbage_collector

    try:
        settings = ApiSettings()
    except ValidationError as error:
        first = error.errors()[0]
        raise RuntimeFailureError(
            f"invalid API setting {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None
    # Options win over the environment; typer has already validated them.
    overrides = {name: value for name, value in (("host", host), ("port", port)) if value}
    settings = settings.model_copy(update=overrides)
    ensure_port_free(settings.host, settings.port)
    start_telemetry("api", log_level="INFO")
    try:
        app = create_app(settings)
    except UnsafeSettingsError as error:
        raise RuntimeFailureError(str(error)) from None
    # Streams allocate per event as the worker does per record: the default thresholds gave
    # collection pauses that showed in the p99 of delivery (benchmarks/delivery.py).
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,  # uvicorn's records go through the JSON handler set up above
    )


def _child_specs(
    env: dict[str, str],
    api_host: str,
    api_port: int,
    log_dir: Path,
    worker_metrics_port: int,
    snapshots_metrics_port: int,
) -> list[ChildSpec]:
    baylink = [sys.executable, "-m", "baylink"]
    api_argv = [*baylink, "api", "--host", api_host, "--port", str(api_port)]
    return [
        ChildSpec(
            "worker",
            [*baylink, "worker"],
            env | {METRICS_PORT_ENV: str(worker_metrics_port)},
            log_path=log_dir / "worker.log",
        ),
        ChildSpec(
            "snapshots",
            [*baylink, "snapshots", "follow"],
            env | {METRICS_PORT_ENV: str(snapshots_metrics_port)},
            log_path=log_dir / "snapshots.log",
        ),
        ChildSpec("relay", [*baylink, "relay"], env, log_path=log_dir / "relay.log"),
        ChildSpec("api", api_argv, env, log_path=log_dir / "api.log"),
    ]


def _print_summary(
    data_dir: Path,
    state: RuntimeState,
    pids: dict[str, int],
    log_dir: Path,
    embedded_storage: str | None,
    admin_token_file: Path | None,
) -> None:
    broker_kind = f"embedded Tansu, {embedded_storage}" if embedded_storage else "external"
    typer.echo(f"baylink up: data dir {data_dir}")
    typer.echo(f"  broker        {state.broker_bootstrap}  ({broker_kind})")
    typer.echo(f"  event store   {state.event_store_url}")
    typer.echo(f"  object store  {state.object_store_url}")
    typer.echo(f"  worker        pid {pids.get('worker')}  (log {log_dir / 'worker.log'})")
    typer.echo(f"  relay         pid {pids.get('relay')}  (log {log_dir / 'relay.log'})")
    typer.echo(f"  snapshots     pid {pids.get('snapshots')}  (log {log_dir / 'snapshots.log'})")
    typer.echo(
        f"  api           {state.api_url}  (pid {pids.get('api')}, log {log_dir / 'api.log'})"
    )
    typer.echo(f"  metrics       {', '.join(state.metrics_urls.values())}")
    typer.echo(f"  state         {state_path(data_dir)}")
    where = admin_token_file or "the BAYLINK_ADMIN_TOKEN environment variable"
    typer.echo(f"  admin token   in {where} (send it as Authorization: Bearer <token>)")
    typer.echo("Press Ctrl-C to stop.")


def _refuse_unsafe_admin_token(token: str) -> None:
    # Checked before anything starts, rather than by an API child restarted in a loop.
    from api.auth import UnsafeSettingsError, check_admin_token_value

    try:
        check_admin_token_value(token, os.environ.get("BAYLINK_ENV", "production"))
    except UnsafeSettingsError as error:
        raise RuntimeFailureError(str(error)) from None


def _refuse_if_already_running(data_dir: Path) -> None:
    try:
        state = RuntimeState.read(data_dir)
    except RuntimeStateNotFoundError:
        return
    except RuntimeStateCorruptError as error:
        logger.warning("ignoring unreadable runtime state: %s", error)
        return
    pid = state.pids.get("supervisor")
    if pid is not None and pid != os.getpid() and _is_alive(pid):
        raise AlreadyRunningError(
            f"baylink is already running from {data_dir} (pid {pid}); stop it first"
        )
    # A state file whose owner is gone is left over from a crash; it is simply replaced.


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _show_runtime_logs() -> None:
    # Restarts and give-ups of children must be visible on the terminal of `baylink up`.
    logging.basicConfig(level=logging.INFO, format="baylink: %(message)s")
