"""From an object-store URL to a store, or an error naming the URL; nothing is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import ObjectStoreUrlError
from storage.object_store_factory import open_object_store
from storage.object_store_local import LocalObjectStore
from storage.object_store_s3 import S3ObjectStore


@pytest.fixture(autouse=True)
def no_s3_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BAYLINK_STORAGE_S3_ENDPOINT",
        "BAYLINK_STORAGE_S3_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_file_url_opens_a_local_store_and_creates_its_directory(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "objects"

    store = open_object_store(directory.as_uri())

    assert isinstance(store, LocalObjectStore)
    assert store.root == directory
    assert directory.is_dir()


def test_a_file_url_with_escaped_characters_names_the_unescaped_directory(
    tmp_path: Path,
) -> None:
    store = open_object_store(f"file://localhost{tmp_path.as_posix()}/baylink%20objects")

    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path / "baylink objects"


def test_a_plain_path_opens_a_local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    absolute = open_object_store(str(tmp_path / "absolute"))
    relative = open_object_store("var/objects")

    assert isinstance(absolute, LocalObjectStore)
    assert absolute.root == tmp_path / "absolute"
    assert isinstance(relative, LocalObjectStore)
    assert relative.root == tmp_path / "var" / "objects"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("file://var/baylink/objects", "three slashes"),
        ("file:var/objects", "absolute directory"),
        ("file:///", "absolute directory"),
        ("file:///srv/objects?mode=fast", "query"),
    ],
)
def test_a_file_url_that_names_no_local_absolute_directory_is_refused(
    url: str, complaint: str
) -> None:
    with pytest.raises(ObjectStoreUrlError, match=complaint) as raised:
        open_object_store(url)
    assert url in str(raised.value)


def test_an_s3_url_names_the_bucket_and_the_query_the_server() -> None:
    store = open_object_store(
        "s3://baylink-snapshots?endpoint=http://127.0.0.1:8333&region=ap-east-1",
        access_key="key",
        secret_key="secret",
    )

    assert isinstance(store, S3ObjectStore)
    assert store.bucket == "baylink-snapshots"
    assert store.endpoint_url == "http://127.0.0.1:8333"
    assert store.region == "ap-east-1"
    assert store.credentials() == ("key", "secret")


def test_an_s3_url_takes_server_region_and_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BAYLINK_STORAGE_S3_ENDPOINT", "https://s3.gd-shenzhen.example")
    monkeypatch.setenv("BAYLINK_STORAGE_S3_REGION", "cn-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")

    store = open_object_store("s3://baylink-snapshots/")

    assert isinstance(store, S3ObjectStore)
    assert store.endpoint_url == "https://s3.gd-shenzhen.example"
    assert store.region == "cn-south-1"
    assert store.credentials() == ("env-key", "env-secret")


def test_credentials_given_as_arguments_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")

    store = open_object_store(
        "s3://baylink-snapshots?endpoint=http://127.0.0.1:8333",
        access_key="arg-key",
        secret_key="arg-secret",
    )

    assert isinstance(store, S3ObjectStore)
    assert store.credentials() == ("arg-key", "arg-secret")
    assert store.region == "us-east-1"


def test_an_s3_url_without_a_server_is_refused() -> None:
    with pytest.raises(ObjectStoreUrlError, match="BAYLINK_STORAGE_S3_ENDPOINT") as raised:
        open_object_store("s3://baylink-snapshots", access_key="key", secret_key="secret")
    assert "s3://baylink-snapshots" in str(raised.value)


def test_an_s3_url_without_credentials_is_refused() -> None:
    with pytest.raises(ObjectStoreUrlError, match="AWS_ACCESS_KEY_ID"):
        open_object_store("s3://baylink-snapshots?endpoint=http://127.0.0.1:8333")


def test_credentials_inside_an_s3_url_are_refused_without_repeating_the_secret() -> None:
    with pytest.raises(ObjectStoreUrlError, match="carries credentials") as raised:
        open_object_store("s3://key:hunter2@baylink-snapshots?endpoint=http://127.0.0.1:8333")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("s3://Baylink_Snapshots?endpoint=http://h:1", "valid bucket"),
        ("s3://ab?endpoint=http://h:1", "valid bucket"),
        ("s3://?endpoint=http://h:1", "valid bucket"),
        ("s3://baylink-snapshots/2025/?endpoint=http://h:1", "path inside the bucket"),
        ("s3://baylink-snapshots?endpoint=http://h:1&secure=yes", "unknown parameters"),
        ("s3://baylink-snapshots?endpoint=http://h:1&endpoint=http://g:1", "repeats"),
        ("s3://baylink-snapshots?endpoint=ftp://h:1", "endpoint"),
        ("s3://baylink-snapshots?endpoint=http://h:1/path", "endpoint"),
    ],
)
def test_a_malformed_s3_url_is_refused_naming_the_url(url: str, complaint: str) -> None:
    with pytest.raises(ObjectStoreUrlError, match=complaint) as raised:
        open_object_store(url, access_key="key", secret_key="secret")
    assert url in str(raised.value)


@pytest.mark.parametrize("url", ["gs://baylink", "http://127.0.0.1:8333/baylink", "", "   "])
def test_a_url_of_another_kind_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ObjectStoreUrlError) as raised:
        open_object_store(url)
    assert repr(url) in str(raised.value)
