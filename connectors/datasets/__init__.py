"""Dataset definitions shipped with the connectors, as YAML beside this module."""

from __future__ import annotations

from importlib.resources import files

import yaml

from domain.dataset import DatasetDefinition
from domain.region import RegionRegistry

GTFS_RT_VEHICLE_POSITIONS = "gtfs-rt-vehicle-positions"
GTFS_RT_TRIP_UPDATES = "gtfs-rt-trip-updates"
GTFS_RT_ALERTS = "gtfs-rt-alerts"
TD_SPEEDMAP = "td-speedmap"
TD_DETECTOR = "td-detector"
SDMX_OBSERVATIONS = "sdmx-observations"
INDICATOR_OBSERVATIONS = "indicator-observations"
HK_DISTRICT_BOUNDARIES = "hk-district-boundaries"
HK_TRAFFIC_DETECTORS = "hk-traffic-detectors"


def load(name: str, regions: RegionRegistry | None = None) -> DatasetDefinition:
    """The shipped definition ``<name>.yaml``, checked by the domain's own reader."""
    text = files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return DatasetDefinition.from_dict(yaml.safe_load(text), regions)
