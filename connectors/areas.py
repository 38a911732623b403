"""Area codes in statistical data mapped to the baylink regions they name.

Statistics name places by many codes: ISO 3166 alpha-2, alpha-3 and numeric (``HK``, ``HKG``,
``344``), ISO 3166-2 subdivisions (``CN-HK``, ``CN-GD``, and the newer numeric ``CN-91``,
``CN-44``), China's GB/T 2260 administrative division codes (``440300`` is Shenzhen) and plain
names. A code that names a baylink region maps to it; any other (``CN`` for the whole country,
``US``, ``U2`` for the euro area) names no region and is kept as it was. IMF numeric country
codes (``532`` for Hong Kong) are not read: ISO once gave the same numbers to other places.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Dimensions (and indicator table columns) that say which place an observation is about,
# most specific first: REF_AREA is the SDMX cross-domain concept, the rest are common aliases.
AREA_DIMENSIONS: tuple[str, ...] = (
    "REF_AREA",
    "GEO",
    "AREA",
    "COUNTRY",
    "LOCATION",
    "REGION",
    "COUNTERPART_AREA",
)


def _aliases(region: str, *codes: str) -> dict[str, str]:
    return {code.casefold(): region for code in codes}


_REGION_OF: Mapping[str, str] = {
    **_aliases(
        "hk",
        "HK",
        "HKG",
        "344",
        "CN-HK",
        "CN-91",
        "810000",
        "Hong Kong",
        "Hong Kong, China",
        "Hong Kong SAR",
        "Hong Kong SAR, China",
        "Hong Kong Special Administrative Region",
        "香港",
    ),
    **_aliases(
        "mo",
        "MO",
        "MAC",
        "446",
        "CN-MO",
        "CN-92",
        "820000",
        "Macao",
        "Macau",
        "Macao, China",
        "Macao SAR",
        "Macao SAR, China",
        "Macao Special Administrative Region",
        "澳門",
        "澳门",
    ),
    **_aliases("gd", "CN-GD", "CN-44", "440000", "Guangdong", "广东", "廣東", "广东省", "廣東省"),
    **_aliases("gd-guangzhou", "440100", "Guangzhou", "广州", "廣州"),
    **_aliases("gd-shenzhen", "440300", "Shenzhen", "深圳"),
    **_aliases("gd-zhuhai", "440400", "Zhuhai", "珠海"),
    **_aliases("gd-foshan", "440600", "Foshan", "佛山"),
    **_aliases("gd-jiangmen", "440700", "Jiangmen", "江门", "江門"),
    **_aliases("gd-zhaoqing", "441200", "Zhaoqing", "肇庆", "肇慶"),
    **_aliases("gd-huizhou", "441300", "Huizhou", "惠州"),
    **_aliases("gd-dongguan", "441900", "Dongguan", "东莞", "東莞"),
    **_aliases("gd-zhongshan", "442000", "Zhongshan", "中山"),
}


def region_of_area(code: str) -> str | None:
    """The baylink region an area code or name stands for, or None when it names none."""
    return _REGION_OF.get(code.strip().casefold())


def area_in(values: Mapping[str, str], columns: Iterable[str] = AREA_DIMENSIONS) -> str | None:
    """The value of the first area dimension ``values`` holds (dimension ids are upper case)."""
    for column in columns:
        value = values.get(column)
        if value:
            return value
    return None
