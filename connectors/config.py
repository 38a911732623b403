"""The connector config file: which sources to run, how to read them, where they go.

```yaml
sources:
  - name: sz-road-speed                 # unique; names the checkpoint and the MQTT client id
    dataset: gba.traffic.sensor-readings
    format: csv
    region: gd-shenzhen                 # default: the dataset's owner region
    crs: EPSG:4326                      # default: what the source or dataset declares
    location: https://example.org/speed.csv   # http(s) URL, mqtt://host:port/topic,
                                              # a directory (with glob) or a file path
    schedule: {interval: 60}            # seconds between polls or directory scans
    limits: {max_bytes: 10485760, timeout: 30}
```

Relative paths are relative to the config file. Any mistake is a ConnectorConfigError whose
one-line message names the file, the source and the key.
"""

from __future__ import annotations

import dataclasses
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.crs import CrsError, crs_name
from connectors.errors import ConnectorError
from connectors.formats import FORMATS, ParseOptions
from connectors.source import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# ParseOptions fields a config sets through keys of their own (or that the runner fills in).
_OPTIONS_SET_ELSEWHERE = frozenset({"crs", "static_gtfs", "source_name"})


class ConnectorConfigError(ConnectorError):
    """A connector config file cannot be read or says something that cannot be run."""


class Transport(StrEnum):
    HTTP = "http"
    MQTT = "mqtt"
    DIRECTORY = "directory"
    FILE = "file"


class Schedule(BaseModel):
    """How often a polled source is looked at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    settle: Annotated[float, Field(ge=0, le=3_600)] = 2.0


class Limits(BaseModel):
    """What a source may send: bytes per payload, seconds per request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: Annotated[int, Field(gt=0, le=1024**3)] = DEFAULT_MAX_BYTES
    timeout: Annotated[float, Field(gt=0, le=3_600)] = DEFAULT_TIMEOUT_SECONDS


class Retry(BaseModel):
    """Backoff of a failing source: full-jitter delays from ``base`` doubling up to ``cap``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Annotated[float, Field(gt=0, le=3_600)] = 1.0
    cap: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    attempts: Annotated[int, Field(ge=1, le=100)] = 5

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> Retry:
        if self.cap < self.base:
            raise ValueError(f"cap ({self.cap}) must not be below base ({self.base})")
        return self


@dataclasses.dataclass(frozen=True, slots=True)
class MqttLocation:
    host: str
    port: int
    topic: str
    username: str | None
    password: str | None


class SourceConfig(BaseModel):
    """One source: a location read by one transport, parsed as one format into one dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=_NAME)]
    dataset: Annotated[str, Field(min_length=1)]
    format: str
    location: Annotated[str, Field(min_length=1)]
    region: str | None = None
    crs: str | None = None
    glob: str | None = None
    static_gtfs: Path | None = None
    client_id: Annotated[str | None, Field(pattern=_NAME)] = None
    schedule: Schedule = Schedule()
    limits: Limits = Limits()
    retry: Retry = Retry()
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return crs_name(value)
        except CrsError as error:
            raise ValueError(str(error)) from None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"unknown format {value!r}; expected one of {', '.join(FORMATS)}")
        return value

    @field_validator("options")
    @classmethod
    def _parse_options_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = {f.name for f in dataclasses.fields(ParseOptions)} - _OPTIONS_SET_ELSEWHERE
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown parse option {unknown[0]!r}; expected one of {', '.join(sorted(known))}"
                if known
                else f"unknown parse option {unknown[0]!r}; this version takes none here"
            )
        return value

    @model_validator(mode="after")
    def _location_fits_its_transport(self) -> SourceConfig:
        transport = self.transport
        if transport is Transport.MQTT:
            self.mqtt_location()
        elif transport is Transport.HTTP and not urlsplit(self.location).hostname:
            raise ValueError(f"location {self.location!r} names no host")
        if self.glob is not None and transport is not Transport.DIRECTORY:
            raise ValueError("glob applies only to a directory location")
        return self

    @property
    def transport(self) -> Transport:
        scheme = urlsplit(self.location).scheme.lower()
        if scheme in ("http", "https"):
            return Transport.HTTP
        if scheme == "mqtt":
            return Transport.MQTT
        if scheme and scheme != "file" and len(scheme) > 1:
            raise ValueError(
                f"location {self.location!r}: unsupported scheme {scheme!r} "
                "(expected http, https, mqtt, file or a path)"
            )
        if self.glob is not None or self.location.endswith("/") or self.path.is_dir():
            return Transport.DIRECTORY
        return Transport.FILE

    @property
    def path(self) -> Path:
        """The location as a filesystem path (directory and file sources)."""
        if self.location.lower().startswith("file://"):
            return Path(unquote(urlsplit(self.location).path))
        return Path(self.location).expanduser()

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or f"baylink-{self.name}"

    def mqtt_location(self) -> MqttLocation:
        """Host, port and topic of ``mqtt://[user[:password]@]host[:port]/topic``.

        The topic is everything after the first ``/``, taken literally: MQTT wildcards
        (``+``, ``#``) are allowed, so ``#`` is not a URL fragment here.
        """
        rest = self.location[len("mqtt://") :]
        netloc, _, topic = rest.partition("/")
        if not topic:
            raise ValueError(f"location {self.location!r} names no MQTT topic after the host")
        parts = urlsplit(f"//{netloc}")
        try:
            port = parts.port or 1883
        except ValueError:
            raise ValueError(f"location {self.location!r} has a bad port") from None
        if not parts.hostname:
            raise ValueError(f"location {self.location!r} names no host")
        if re.search(r"#.", topic) or any(
            ("+" in level or "#" in level) and len(level) > 1 for level in topic.split("/")
        ):
            raise ValueError(f"MQTT topic {topic!r} uses + or # other than as a whole level")
        return MqttLocation(
            parts.hostname,
            port,
            topic,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


class ConnectorConfig(BaseModel):
    """Every source a `baylink connector run` runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: Annotated[list[SourceConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> ConnectorConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"two sources are named {source.name!r}")
            seen.add(source.name)
        return self


def _where(config: object, loc: tuple[int | str, ...]) -> str:
    """``sources[1] (name 'x').limits.max_bytes`` from a pydantic error location."""
    parts: list[str] = []
    node: object = config
    for step in loc:
        if isinstance(step, int):
            parts[-1] = f"{parts[-1]}[{step}]" if parts else f"[{step}]"
            named = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(named, dict) and isinstance(named.get("name"), str):
                parts[-1] += f" ({named['name']})"
            node = named
        else:
            key = str(step)
            parts.append(key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else repr(key))
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_config(document: object, origin: str = "config") -> ConnectorConfig:
    """Validate a loaded document; relative paths stay as written (see ``load_config``)."""
    if not isinstance(document, dict):
        raise ConnectorConfigError(
            f"{origin}: expected a mapping with a 'sources' list, not {type(document).__name__}"
        )
    try:
        return ConnectorConfig.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = _where(document, tuple(first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        more = len(error.errors()) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConnectorConfigError(
            f"{origin}: {where + ': ' if where else ''}{message}{tail}".replace("\n", " ")
        ) from None


def load_config(path: Path) -> ConnectorConfig:
    """Read and validate a YAML config; relative paths in it become relative to its folder."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConnectorConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConnectorConfigError(
            f"{path}: not valid YAML: {' '.join(str(error).split())}"
        ) from None
    config = parse_config(document, str(path))
    base = path.parent.absolute()
    return ConnectorConfig(sources=[_anchored(source, base) for source in config.sources])


def _anchored(source: SourceConfig, base: Path) -> SourceConfig:
    changes: dict[str, Any] = {}
    if source.static_gtfs is not None and not source.static_gtfs.is_absolute():
        changes["static_gtfs"] = base / source.static_gtfs
    if source.transport in (Transport.DIRECTORY, Transport.FILE) and not source.path.is_absolute():
        location = str(base / source.path)
        changes["location"] = location + "/" if source.location.endswith("/") else location
    return source.model_copy(update=changes) if changes else source
