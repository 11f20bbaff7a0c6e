"""The local model stores: the result protocol on disk, and an honest ``promote``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch_image.errors import InternalError
from batch_image.model.stores import DirectoryStore, VersionedStore


def _staged(store: VersionedStore | DirectoryStore, card: bool = True) -> Path:
    staged = store.staging_dir()
    (staged / "model.skops").write_bytes(b"model")
    if card:
        (staged / "model.json").write_text('{"version": "v"}')
    return staged


def test_versioned_publish_shows_the_whole_version_at_once(tmp_path: Path) -> None:
    store = VersionedStore(tmp_path)
    version = store.reserve("demo", "20261126T090000Z")
    assert list((tmp_path / "demo" / version).iterdir()) == []  # reserved: no marker yet
    location = store.publish(_staged(store), "demo", version)
    assert location == str(tmp_path / "demo" / version)
    assert sorted(p.name for p in Path(location).iterdir()) == ["model.json", "model.skops"]
    assert not list(tmp_path.glob(".staging-*"))


def test_versioned_publish_refuses_a_staged_dir_without_its_card(tmp_path: Path) -> None:
    store = VersionedStore(tmp_path)
    version = store.reserve("demo", "20261126T090000Z")
    with pytest.raises(InternalError) as caught:
        store.publish(_staged(store, card=False), "demo", version)
    assert caught.value.code == "model_incomplete"
    assert list((tmp_path / "demo" / version).iterdir()) == []


def test_versioned_publish_never_overwrites_a_version_with_files(tmp_path: Path) -> None:
    store = VersionedStore(tmp_path)
    version = store.reserve("demo", "20261126T090000Z")
    store.publish(_staged(store), "demo", version)
    with pytest.raises(OSError):
        store.publish(_staged(store), "demo", version)
    assert (tmp_path / "demo" / version / "model.json").read_text() == '{"version": "v"}'


def test_versioned_promote_says_whether_the_pointer_moved(tmp_path: Path) -> None:
    store = VersionedStore(tmp_path)
    assert store.promote("demo", "20261126T090000Z") is True
    assert store.promote("demo", "20261126T090000Z") is False  # already current
    assert store.promote("demo", "20261126T080000Z") is True  # local: the operator's choice
    pointer = json.loads((tmp_path / "demo" / "current.json").read_text())
    assert pointer == {"version": "20261126T080000Z"}


def test_directory_store_has_no_pointer_to_move(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "model")
    store.publish(_staged(store), "demo", "v")
    assert store.promote("demo", "v") is False
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", "model.skops"]
    assert not (tmp_path / "current.json").exists()
