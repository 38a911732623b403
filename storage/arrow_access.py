"""Where pyarrow reads an object store's objects from: the one place that knows each store's
location (a directory for the local store, a bucket behind an endpoint for S3).

Reading Parquet through pyarrow's own file systems lets it fetch only the footers, row groups
and columns a query needs. A store with no location pyarrow can reach is read through the
port itself (whole objects, verified by SHA-256), so every ObjectStore works, only slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from storage.object_store import ObjectStore
from storage.object_store_local import LocalObjectStore
from storage.object_store_s3 import S3ObjectStore

_PARQUET = ds.ParquetFileFormat()


@dataclass(frozen=True)
class ArrowLocation:
    """A pyarrow file system and the path under it that object keys are relative to."""

    filesystem: pafs.FileSystem
    base: str

    def path_for(self, key: str) -> str:
        return f"{self.base}/{key}" if self.base else key


def arrow_location(store: ObjectStore) -> ArrowLocation | None:
    """The location pyarrow can read ``store``'s objects from, or None when it has none."""
    if isinstance(store, LocalObjectStore):
        return ArrowLocation(pafs.LocalFileSystem(), store.root.as_posix())

    if isinstance(store, S3ObjectStore):
        return _s3_location(store)
    return None


def _s3_location(store: S3ObjectStore) -> ArrowLocation:
    endpoint = urlsplit(store.endpoint_url)
    access_key, secret_key = store.credentials()
    filesystem = pafs.S3FileSystem(
        access_key=access_key,
        secret_key=secret_key,
        region=store.region,
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
    )
    return ArrowLocation(filesystem, store.bucket)


def parquet_fragment(
    store: ObjectStore, location: ArrowLocation | None, key: str, partition: ds.Expression
) -> ds.Fragment:
    """One Parquet object as a dataset fragment whose partition columns are ``partition``."""
    if location is None:
        source: object = pa.BufferReader(store.get(key))
        return _PARQUET.make_fragment(source, partition_expression=partition)
    return _PARQUET.make_fragment(
        location.path_for(key), filesystem=location.filesystem, partition_expression=partition
    )


def fragments_dataset(
    schema: pa.Schema, fragments: list[ds.Fragment], location: ArrowLocation | None
) -> ds.Dataset:
    """A dataset over the given fragments, read with ``schema``."""
    filesystem = location.filesystem if location is not None else pafs.LocalFileSystem()
    return ds.FileSystemDataset(fragments, schema, _PARQUET, filesystem)
