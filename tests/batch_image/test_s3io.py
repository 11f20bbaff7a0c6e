"""S3 building blocks against moto's server: conditional writes, the lease, ranged
header reads, checkpoints, and the helpers train uses (fetch, publish, promote)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from botocore.exceptions import ClientError
from rasterio.windows import Window

from batch_image import s3io
from batch_image.errors import InvalidInputError
from batch_image.jobs.checkpoints import CheckpointStore, decode, encode
from batch_image.jobs.lease import Lease, LeaseLost
from batch_image.predict.engine import ChunkResult
from batch_image.raster.remote import check_remote_raster
from tests.conftest import make_scene, s3_client, versioned_bucket, write_raster

pytestmark = pytest.mark.xdist_group("moto_server_s3io")


@pytest.fixture
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    return versioned_bucket(s3, "io")


# --- conditional writes (what the lease relies on) --------------------------------------------


def test_moto_honours_if_none_match_and_if_match(s3: Any, bucket: str) -> None:
    etag = s3io.put_json(s3, bucket, "k.json", {"n": 1}, if_none_match=True)
    with pytest.raises(ClientError) as info:
        s3io.put_json(s3, bucket, "k.json", {"n": 2}, if_none_match=True)
    assert s3io.is_precondition_failed(info.value)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as info:
        s3io.put_json(s3, bucket, "k.json", {"n": 3}, if_match="0" * 32)
    assert s3io.is_precondition_failed(info.value)
    new = s3io.put_json(s3, bucket, "k.json", {"n": 4}, if_match=etag)
    assert new != etag
    found = s3io.get_json(s3, bucket, "k.json")
    assert found is not None and found[0] == {"n": 4}
    assert s3io.get_json(s3, bucket, "absent.json") is None


# --- lease ------------------------------------------------------------------------------------


def test_lease_is_exclusive_and_released(s3: Any, bucket: str) -> None:
    a = Lease(s3, bucket, "partial/r/lease.json", ttl=300, job_id="job-a")
    b = Lease(s3, bucket, "partial/r/lease.json", ttl=300, job_id="job-b")
    assert a.acquire()
    try:
        assert not b.acquire()
        assert b.took_over is not None and b.took_over["job_id"] == "job-a"
        a.check()  # still ours
    finally:
        a.release()
    assert s3io.get_json(s3, bucket, "partial/r/lease.json") is None
    assert b.acquire()
    b.release()


def test_lease_of_an_earlier_attempt_of_the_same_job_is_taken_over_at_once(
    s3: Any, bucket: str
) -> None:
    first = Lease(s3, bucket, "partial/s/lease.json", ttl=300, job_id="job-1", attempt=1)
    assert first.acquire()
    first.stop()  # attempt 1 "dies" without releasing
    second = Lease(s3, bucket, "partial/s/lease.json", ttl=300, job_id="job-1", attempt=2)
    assert second.acquire()
    assert second.took_over is not None and second.took_over["attempt"] == 1
    # the dead holder, were it to wake up, finds its lease gone at its next renewal
    assert not first._write(if_match=first.etag)
    second.release()


def test_a_lost_answer_to_the_take_over_write_is_still_our_lease(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 acted on the If-Match take-over, the answer was lost, botocore's retry got 412:
    the successor must hold the lease (it names our owner), not end ``in_progress``."""
    key = "partial/lost/lease.json"
    first = Lease(s3, bucket, key, ttl=300, job_id="job-1", attempt=1)
    assert first.acquire()
    first.stop()
    second = Lease(s3, bucket, key, ttl=300, job_id="job-1", attempt=2)
    real_write = second._write

    def write_then_lose_the_answer(*, if_match: str | None) -> bool:
        if if_match is None:
            return real_write(if_match=None)
        assert real_write(if_match=if_match)  # S3 acted ...
        return False  # ... and the retry of the lost answer got 412

    monkeypatch.setattr(second, "_write", write_then_lose_the_answer)
    assert second.acquire()
    assert second.took_over is not None and second.took_over["attempt"] == 1
    body, etag, _ = second.holder()
    assert body["owner"] == second.owner and etag == second.etag
    monkeypatch.setattr(second, "_write", real_write)
    second.release()
    assert second.holder() is None


def test_expired_lease_has_one_successor(s3: Any, bucket: str) -> None:
    key = "partial/e/lease.json"
    s3io.put_json(s3, bucket, key, {"job_id": "dead", "ttl_s": 0})
    time.sleep(1.1)  # S3's clock has one-second resolution
    a = Lease(s3, bucket, key, ttl=300, job_id="a")
    b = Lease(s3, bucket, key, ttl=300, job_id="b")
    current = a.holder()
    assert current is not None and current[2]  # expired
    # both saw the same expired lease; both try the conditional take-over: one wins
    _body, etag, _ = current
    wins = [a._write(if_match=etag), b._write(if_match=etag)]
    assert wins == [True, False]


def test_heartbeat_renews_and_notices_a_takeover(s3: Any, bucket: str) -> None:
    key = "partial/h/lease.json"
    lease = Lease(s3, bucket, key, ttl=3, job_id="h")
    assert lease.acquire()
    first = lease.etag
    deadline = time.monotonic() + 30
    while lease.etag == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.etag != first  # renewed with If-Match
    lease.check()
    # someone takes the lease (as a successor would after expiry)
    s3io.put_json(s3, bucket, key, {"job_id": "thief", "ttl_s": 300})
    while not lease.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(LeaseLost):
        lease.check()
    lease.release()  # must not delete the thief's lease
    found = s3io.get_json(s3, bucket, key)
    assert found is not None and found[0]["job_id"] == "thief"


def test_lease_validity_runs_out_without_renewal(s3: Any, bucket: str) -> None:
    now = [0.0]
    lease = Lease(s3, bucket, "partial/v/lease.json", ttl=300, clock=lambda: now[0])
    assert lease.acquire()
    lease.stop()
    now[0] = 199.0
    lease.check()
    now[0] = 200.0  # ttl - margin: a successor may take over at 300 on S3's clock
    with pytest.raises(LeaseLost):
        lease.check()


# --- header from ranged reads -----------------------------------------------------------------


def _ifd_at_end(path: Path) -> Path:
    data = np.random.default_rng(0).integers(1, 1000, (4, 300, 300)).astype("uint16")
    write_raster(path, data, nodata=0, block=None)
    with rasterio.open(path, "r+") as dst:  # a directory that grew is rewritten at the end
        dst.update_tags(NOTE="x" * 4000)
    return path


def test_header_with_ifd_at_the_end_costs_two_small_reads(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    path = _ifd_at_end(tmp_path / "tail.tif")
    raw = path.read_bytes()
    (ifd,) = struct.unpack("<I", raw[4:8])
    assert ifd > 64 * 1024  # the case a prefix-only read would miss
    s3.put_object(Bucket=bucket, Key="input/tail.tif", Body=raw)
    info, source = check_remote_raster(
        s3, bucket, "input/tail.tif", size=len(raw), max_pixels=10**9, name="tail"
    )
    assert (info.width, info.height, info.count, info.dtype) == (300, 300, 4, "uint16")
    assert source.requests <= 3
    assert source.bytes_read < len(raw) // 2


def test_header_reads_are_capped(s3: Any, bucket: str, tmp_path: Path) -> None:
    path = _ifd_at_end(tmp_path / "tail.tif")
    raw = path.read_bytes()
    s3.put_object(Bucket=bucket, Key="input/t.tif", Body=raw)
    with pytest.raises(InvalidInputError) as info:
        check_remote_raster(
            s3,
            bucket,
            "input/t.tif",
            size=len(raw),
            max_pixels=10**9,
            name="t",
            block=4096,
            max_bytes=8192,
        )
    assert info.value.code == "header_too_large"


def test_header_of_one_version_even_after_overwrite(s3: Any, bucket: str, tmp_path: Path) -> None:
    scene, _ = make_scene(tmp_path, bands=4)
    first = s3.put_object(Bucket=bucket, Key="input/v.tif", Body=scene.read_bytes())
    s3.put_object(Bucket=bucket, Key="input/v.tif", Body=b"not a tiff at all")
    info, _ = check_remote_raster(
        s3,
        bucket,
        "input/v.tif",
        size=scene.stat().st_size,
        max_pixels=10**9,
        name="v",
        version_id=first["VersionId"],
    )
    assert info.count == 4


# --- checkpoints --------------------------------------------------------------------------------


def _chunk(i: int, w: Window) -> ChunkResult:
    h, wd = int(w.height), int(w.width)
    cls = np.full((h, wd), 1 + i % 3, np.uint8)
    return ChunkResult(w, cls, np.full((h, wd), 50, np.uint8), np.array([h * wd, 0, 0]), np.ones(3))


def test_checkpoint_roundtrip_and_resume(s3: Any, bucket: str) -> None:
    windows = [Window(0, r * 4, 10, 4) for r in range(10)]
    chunks = [_chunk(i, w) for i, w in enumerate(windows)]
    back = decode(encode(list(enumerate(chunks))[:3]))
    assert sorted(back) == [0, 1, 2]
    np.testing.assert_array_equal(back[2].classes, chunks[2].classes)

    # attempt 1 checkpoints windows 0..5, batched 2 windows (80 px) per object
    store = CheckpointStore(s3, bucket, "partial/run/chunks/", batch_pixels=80)
    store.plan(windows)
    for i in range(6):
        store.checkpoint(i, chunks[i])
    store.close()
    assert store.uploaded == 3
    # attempt 2 restores them, computes the rest, checkpoints only what it computed
    again = CheckpointStore(s3, bucket, "partial/run/chunks/", batch_pixels=80)
    again.plan(windows)
    restored = [again.restore(i, w) for i, w in enumerate(windows)]
    assert [r is not None for r in restored] == [True] * 6 + [False] * 4
    np.testing.assert_array_equal(restored[5].classes, chunks[5].classes)
    for i, w in enumerate(windows):
        again.checkpoint(i, restored[i] or _chunk(i, w))
    again.close()
    assert again.uploaded == 2
    # a different window plan never sees these chunks
    other = CheckpointStore(s3, bucket, "partial/run/chunks/", batch_pixels=80)
    other.plan([Window(0, 0, 10, 40)])
    assert other.restore(0, Window(0, 0, 10, 40)) is None


# --- for train: fetch, publish, promote ---------------------------------------------------------


def test_fetch_s3_uri_and_local_path(s3: Any, bucket: str, tmp_path: Path) -> None:
    v1 = s3.put_object(Bucket=bucket, Key="training/a b+c/img.tif", Body=b"one")
    s3.put_object(Bucket=bucket, Key="training/a b+c/img.tif", Body=b"two")
    got = s3io.fetch(f"s3://{bucket}/training/a b+c/img.tif", tmp_path, s3=s3)
    assert got.read_bytes() == b"two"
    old = s3io.fetch(
        f"s3://{bucket}/training/a b+c/img.tif?versionId={v1['VersionId']}", tmp_path, s3=s3
    )
    assert old.read_bytes() == b"one" and old != got
    assert s3io.fetch(tmp_path / "x.tif") == tmp_path / "x.tif"
    with pytest.raises(FileNotFoundError):
        s3io.fetch(f"s3://{bucket}/training/missing.tif", tmp_path, s3=s3)
    with pytest.raises(ValueError, match="over the limit"):
        s3io.fetch(f"s3://{bucket}/training/a b+c/img.tif", tmp_path, s3=s3, max_bytes=2)


def test_model_store_publishes_card_last_and_promotes_only_forward(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    from batch_image.model.s3_store import S3ModelStore

    def staged(version: str) -> Path:
        d = tmp_path / version
        (d / "report").mkdir(parents=True)
        (d / "model.skops").write_bytes(b"skops")
        (d / "model.json").write_text(json.dumps({"name": "demo", "version": version}))
        (d / "report" / "confusion.csv").write_text("a,b\n")
        return d

    store = S3ModelStore(bucket, s3=s3, scratch=tmp_path)
    new, old = "20261126T100000Z", "20261126T090000Z"
    assert store.reserve("demo", new) == new
    uri = store.publish(staged(new), "demo", new)
    assert uri == f"s3://{bucket}/models/demo/{new}/"
    keys = {o["Key"] for o in s3io.list_keys(s3, bucket, "models/demo/")}
    assert keys == {
        f"models/demo/{new}/model.json",
        f"models/demo/{new}/model.skops",
        f"models/demo/{new}/report/confusion.csv",
    }  # the reservation is gone once the card is there
    assert store.promote("demo", new) is True
    assert store.current("demo") == new
    # an older training finishing late does not roll the pointer back, unless forced
    store.publish(staged(old), "demo", old)
    assert store.promote("demo", old) is False
    assert store.current("demo") == new
    assert store.promote("demo", old, force=True) is True
    assert store.current("demo") == old


def test_run_report_failure_replaces_a_stale_summary(s3: Any, bucket: str) -> None:
    from batch_image.jobs.run_reports import write_run_report

    ok = write_run_report(s3, bucket, "models/", "demo", "manifest-v1", {"status": "succeeded"})
    assert ok == "models/demo/runs/manifest-v1/summary.json"
    bad = write_run_report(s3, bucket, "models/", "demo", "manifest-v1", {"status": "failed"})
    assert bad == "models/demo/runs/manifest-v1/error.json"
    assert s3io.get_json(s3, bucket, "models/demo/runs/manifest-v1/summary.json") is None
    assert s3io.get_json(s3, bucket, bad) is not None
    write_run_report(s3, bucket, "models/", "demo", "manifest-v1", {"status": "succeeded"})
    assert s3io.get_json(s3, bucket, bad) is None


def test_run_id_for_manifest() -> None:
    from batch_image.jobs.run_reports import run_id_for

    assert run_id_for("3sL4kqtJ") == "3sL4kqtJ"
    for absent in ("null", "", None, "Ref::version", " undefined "):
        assert run_id_for(absent) == "null"


def test_parse_s3_uri_keeps_the_key_raw() -> None:
    loc = s3io.parse_s3_uri("s3://b/models/a+b c%20/")
    assert (loc.bucket, loc.key) == ("b", "models/a+b c%20/")
    assert str(loc.join("current.json")) == "s3://b/models/a+b c%20/current.json"
    with pytest.raises(ValueError):
        s3io.parse_s3_uri("/local/path")
