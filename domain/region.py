"""Regions and the jurisdictions they belong to.

The list is data: the defaults cover the Greater Bay Area and a deployment may add more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from domain.errors import UnknownRegionError

_CODE = re.compile(r"^[a-z]{2}(-[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class Region:
    """A place that owns data, e.g. ``gd-shenzhen`` in jurisdiction ``CN``."""

    code: str
    jurisdiction: str
    name: str = ""

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise UnknownRegionError(f"malformed region code {self.code!r}")
        if not re.match(r"^[A-Z]{2}$", self.jurisdiction):
            raise UnknownRegionError(
                f"region {self.code!r}: jurisdiction must be a two-letter code, "
                f"got {self.jurisdiction!r}"
            )


DEFAULT_REGIONS: tuple[Region, ...] = (
    # Guangdong as a whole, for statistics published for the province, not one city.
    Region("gd", "CN", "Guangdong"),
    Region("gd-guangzhou", "CN", "Guangzhou"),
    Region("gd-shenzhen", "CN", "Shenzhen"),
    Region("gd-zhuhai", "CN", "Zhuhai"),
    Region("gd-foshan", "CN", "Foshan"),
    Region("gd-dongguan", "CN", "Dongguan"),
    Region("gd-huizhou", "CN", "Huizhou"),
    Region("gd-zhongshan", "CN", "Zhongshan"),
    Region("gd-jiangmen", "CN", "Jiangmen"),
    Region("gd-zhaoqing", "CN", "Zhaoqing"),
    Region("hk", "HK", "Hong Kong"),
    Region("mo", "MO", "Macao"),
)


@dataclass(frozen=True)
class RegionRegistry:
    """The regions a deployment knows; lookups fail with a named error."""

    regions: Mapping[str, Region] = field(default_factory=dict)

    @classmethod
    def of(cls, regions: Iterable[Region]) -> RegionRegistry:
        return cls({region.code: region for region in regions})

    @classmethod
    def default(cls) -> RegionRegistry:
        return cls.of(DEFAULT_REGIONS)

    def extended(self, extra: Iterable[Region]) -> RegionRegistry:
        return RegionRegistry.of([*self.regions.values(), *extra])

    def get(self, code: str) -> Region:
        try:
            return self.regions[code]
        except (KeyError, TypeError):
            raise UnknownRegionError(f"unknown region {code!r}") from None

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.regions

    def __iter__(self) -> Iterator[Region]:
        return iter(self.regions.values())
