"""The connector config file: what it accepts, and one clear line naming the key when wrong."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.config import ConnectorConfigError, Transport, load_config, parse_config


def valid() -> dict[str, Any]:
    return {
        "sources": [
            {
                "name": "sz-speed",
                "dataset": "gba.traffic.sensor-readings",
                "format": "csv",
                "region": "gd-shenzhen",
                "crs": "EPSG:4326",
                "location": "https://data.example.org/speed.csv?key=1",
                "schedule": {"interval": 30},
                "limits": {"max_bytes": 1_000_000, "timeout": 10},
                "retry": {"base": 0.5, "cap": 20, "attempts": 3},
            },
            {
                "name": "mo-sensors",
                "dataset": "gba.traffic.sensor-readings",
                "format": "jsonl",
                "location": "mqtt://user:secret@broker.example.mo:8883/sensors/+/readings/#",
            },
            {
                "name": "hk-drops",
                "dataset": "gba.traffic.sensor-readings",
                "format": "csv",
                "location": "incoming/",
                "glob": "*.csv",
            },
            {
                "name": "hk-latest",
                "dataset": "hk.traffic.vehicle-positions",
                "format": "gtfs-rt",
                "location": "feeds/latest.pb",
                "static_gtfs": "gtfs/static.zip",
            },
        ]
    }


def test_a_config_file_loads_with_its_paths_relative_to_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "connectors.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(valid()))

    speed, mqtt, drops, latest = load_config(path).sources

    assert [s.transport for s in (speed, mqtt, drops, latest)] == [
        Transport.HTTP,
        Transport.MQTT,
        Transport.DIRECTORY,
        Transport.FILE,
    ]
    assert (speed.schedule.interval, speed.limits.max_bytes, speed.retry.attempts) == (
        30,
        1_000_000,
        3,
    )
    where = mqtt.mqtt_location()
    assert (where.host, where.port, where.topic) == (
        "broker.example.mo",
        8883,
        "sensors/+/readings/#",
    )
    assert (where.username, where.password) == ("user", "secret")
    assert mqtt.mqtt_client_id == "baylink-mo-sensors"
    assert drops.path == tmp_path / "conf" / "incoming"
    assert latest.path == tmp_path / "conf" / "feeds" / "latest.pb"
    assert latest.static_gtfs == tmp_path / "conf" / "gtfs" / "static.zip"


def test_defaults_fill_what_a_source_leaves_out() -> None:
    source = parse_config(valid()).sources[1]
    assert (source.schedule.interval, source.schedule.settle) == (60.0, 2.0)
    assert (source.limits.max_bytes, source.limits.timeout) == (64 * 1024 * 1024, 30.0)
    assert (source.retry.base, source.retry.cap, source.retry.attempts) == (1.0, 60.0, 5)
    assert source.region is None


def mutated(path: list[Any], value: Any) -> dict[str, Any]:
    document = valid()
    node: Any = document
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["sources", 0, "format"], "xml", "sources[0] (sz-speed).format: unknown format 'xml'"),
        (["sources", 0, "dataset"], ..., "sources[0] (sz-speed).dataset: Field required"),
        (["sources", 0, "colour"], "red", "sources[0] (sz-speed).colour: Extra inputs"),
        (
            ["sources", 0, "limits", "max_bytes"],
            0,
            "sources[0] (sz-speed).limits.max_bytes: Input should be greater than 0",
        ),
        (
            ["sources", 0, "schedule", "interval"],
            "often",
            "sources[0] (sz-speed).schedule.interval: Input should be a valid number",
        ),
        (
            ["sources", 0, "retry"],
            {"base": 10, "cap": 1},
            "sources[0] (sz-speed).retry: cap (1.0) must not be below base (10.0)",
        ),
        (["sources", 1, "location"], "mqtt://broker", "names no MQTT topic after the host"),
        (["sources", 1, "location"], "mqtt://broker/a#b", "uses + or # other than as a whole"),
        (["sources", 1, "location"], "ftp://x/y", "unsupported scheme 'ftp'"),
        (["sources", 0, "location"], "https:///speed.csv", "names no host"),
        (["sources", 1, "name"], "sz-speed", "two sources are named 'sz-speed'"),
        (["sources", 1, "name"], "has space", "sources[1] (has space).name: String should match"),
        (["sources", 0, "glob"], "*.csv", "glob applies only to a directory location"),
        (["sources", 0, "options"], {"speed": 1}, "unknown parse option 'speed'"),
        (["sources"], [], "sources: List should have at least 1 item"),
        (["sources", 0, "crs"], "EPSG:99999999", "sources[0] (sz-speed).crs: "),
        (["sources", 0, "crs"], "WGS84", "sources[0] (sz-speed).crs: "),
    ],
)
def test_a_mistake_is_one_line_naming_the_source_and_key(
    path: list[Any], value: Any, expected: str
) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        parse_config(mutated(path, value), "connectors.yaml")

    message = str(caught.value)
    assert message.startswith("connectors.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_a_file_that_is_not_yaml_or_not_a_mapping_is_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [\n  - {name: a\n")
    listed = tmp_path / "listed.yaml"
    listed.write_text("- a\n- b\n")

    with pytest.raises(ConnectorConfigError, match=r"broken\.yaml: not valid YAML") as bad:
        load_config(broken)
    with pytest.raises(ConnectorConfigError, match=r"expected a mapping with a 'sources' list"):
        load_config(listed)
    with pytest.raises(ConnectorConfigError, match=r"cannot read .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml")
    assert "\n" not in str(bad.value)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        found.append((*prefix, key))
        if isinstance(child, dict | list) and child:
            found.extend(_paths(child, (*prefix, key)))
    return found


PATHS = _paths(valid())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@settings(max_examples=1000, deadline=None)
@given(
    path=st.sampled_from(PATHS),
    action=st.sampled_from(["replace", "delete", "add"]),
    value=json_values,
    extra_key=st.text(min_size=1, max_size=12),
)
def test_any_mutated_config_is_accepted_or_refused_in_one_line(
    path: tuple[Any, ...], action: str, value: Any, extra_key: str
) -> None:
    document = copy.deepcopy(valid())
    parent: Any = document
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    added = False
    if action == "replace":
        parent[key] = value
    elif action == "delete":
        del parent[key]
    elif isinstance(parent[key], dict) and extra_key not in parent[key]:
        parent[key][extra_key] = value
        added = True
    try:
        config = parse_config(document, "connectors.yaml")
    except ConnectorConfigError as error:
        message = str(error)
        assert message.startswith("connectors.yaml: ")
        assert "\n" not in message
        if added:
            assert repr(extra_key)[1:-1] in message or extra_key in message
        return
    assert not added, f"unknown key {extra_key!r} was accepted"
    assert config.sources
    for source in config.sources:
        assert source.transport in set(Transport)


def test_the_example_config_in_the_repository_is_valid() -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "connectors.yaml"

    sources = load_config(example).sources

    assert [s.transport for s in sources] == [Transport.HTTP, Transport.DIRECTORY, Transport.MQTT]
