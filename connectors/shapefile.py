"""Shapefiles (a zip of .shp, .shx, .dbf and optionally .prj and .cpg) translated into rows.

Read with pyogrio (GDAL's ESRI Shapefile driver). The .prj is the source's declaration of its
CRS: matched to its EPSG code, it is used unless ``--crs`` overrides it; without a .prj the
dataset's CRS applies. Attribute names such as DC_CODE fill the lower-case field of the same
name (noted). A payload that is not a zip holding exactly one shapefile raises PayloadError.
``shapefile_bundle`` zips a .shp with its sidecar files, for callers that hold a path.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyogrio
import pyogrio.errors

from connectors.crs import CrsError, identified_crs
from connectors.errors import PayloadError
from connectors.features import FeatureTranslator, arrow_features, declared_geometry, source_crs
from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition

NAME = "shapefile"
VERSION = "1"
FORMAT = "shapefile"
SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
MAX_UNZIPPED_BYTES = 1 << 30
_SHP_MAGIC = b"\x00\x00\x27\x0a"  # file code 9994, big-endian


def parse_shapefile(
    data: bytes, dataset: DatasetDefinition, crs: str | None = None
) -> ParsedPayload:
    """Read the features of a zipped shapefile; ``crs`` is the ``--crs`` override."""
    declared_geometry(dataset)
    _check_bundle(data)
    try:
        meta, table = pyogrio.read_arrow(data)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as error:
        raise PayloadError("not-shapefile", f"GDAL cannot read it: {str(error)[:200]}") from None
    except (
        pyogrio.errors.FieldError,
        pyogrio.errors.GeometryError,
        pyogrio.errors.CRSError,
        ValueError,  # UnicodeDecodeError included: attribute text not in the .cpg's encoding
        IndexError,
        RuntimeError,
        OSError,
    ) as error:
        # pyogrio surfaces GDAL's complaints about damaged files in several shapes.
        why = str(error)[:200] or type(error).__name__
        raise PayloadError("not-shapefile", f"GDAL cannot read it: {why}") from None
    geometry = _geometry_column(table)
    chosen, notes = source_crs(dataset, crs, _declared_crs(meta.get("crs")))
    translator = FeatureTranslator(dataset, chosen)
    rows = translator.rows(arrow_features(table, geometry))
    return ParsedPayload(rows=rows, format=FORMAT, notes=(*notes, *translator.notes(rows)))


def shapefile_bundle(path: Path) -> bytes:
    """A zip of ``path`` (a .shp) and the sidecar files beside it, as parse_shapefile reads."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for part in (path, *(path.with_suffix(s) for s in SIDECARS)):
            if part.exists():
                bundle.write(part, part.name)
    return sink.getvalue()


def _check_bundle(data: bytes) -> None:
    """A zip with exactly one .shp (with its .shx and .dbf) of sane size, before GDAL sees it."""
    if not data:
        raise PayloadError("empty-payload", "the payload holds no data")
    if data[:4] == _SHP_MAGIC:
        raise PayloadError(
            "not-shapefile",
            "a .shp alone holds no attributes and no CRS: zip it with its .shx, .dbf and "
            ".prj (connectors.shapefile.shapefile_bundle does)",
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            members = bundle.infolist()
            shps = [m for m in members if m.filename.lower().endswith(".shp")]
            if len(shps) != 1:
                raise PayloadError(
                    "not-shapefile",
                    f"the zip holds {len(shps)} .shp files; expected exactly one shapefile",
                )
            stem = str(PurePosixPath(shps[0].filename).with_suffix("")).lower()
            names = {m.filename.lower() for m in members}
            missing = [s for s in (".shx", ".dbf") if stem + s not in names]
            if missing:
                raise PayloadError("not-shapefile", f"the shapefile has no {' or '.join(missing)}")
            if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                raise PayloadError("too-large", "the zip unpacks to more than 1 GiB")
            if bundle.read(shps[0])[:4] != _SHP_MAGIC:
                raise PayloadError("not-shapefile", f"{shps[0].filename} is not a shapefile")
            for member in members:
                if member.filename.lower() in (stem + ".prj", stem + ".cpg"):
                    _check_text(member.filename, bundle.read(member))
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
    ) as error:
        raise PayloadError(
            "not-shapefile", f"not a zip of a shapefile: {str(error)[:200]}"
        ) from None
    except NotImplementedError as error:  # an unsupported compression method
        raise PayloadError("not-shapefile", f"the zip cannot be unpacked: {error}") from None


def _check_text(name: str, content: bytes) -> None:
    # pyogrio 0.13 fails with an internal error on a .prj that is not UTF-8; say it here.
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(
            "not-shapefile", f"{name} is not UTF-8 text (byte offset {error.start})"
        ) from None


def _geometry_column(table: pa.Table) -> str:
    for field in table.schema:
        if (field.metadata or {}).get(b"ARROW:extension:name") == b"geoarrow.wkb":
            return str(field.name)
    raise PayloadError("not-shapefile", "GDAL found no geometry column")


def _declared_crs(crs: object) -> str | None:
    if crs is None:
        return None  # no .prj: the source declares nothing
    try:
        return identified_crs(str(crs))
    except CrsError as error:
        raise PayloadError("unknown-crs", f"the .prj: {error}") from None
