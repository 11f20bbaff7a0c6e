"""The tenants' API end to end: the client (library and CLI) over real HTTP against the
sandbox's emulation of the template's REST API, with the same handlers and the flow behind.

The stack is configured with a 200 kB size cap and four tenants whose usage plans differ
(a roomy one, a second tenant, a tight rate and a tiny daily quota).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterdrop_client import Client, InvalidInput, NotAuthorized, OverQuota
from rasterdrop_client.transport import Retry

from rasterdrop_notify.paths import KeyRefused, check_key
from sandbox.api import ApiFrontDoor
from sandbox.core import Options, Sandbox
from tests.conftest import make_model, make_scene

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-api")]

LIMIT = 200_000
ROOMY = {"rate_per_s": 50, "burst": 50, "uploads_per_day": 1000}
CONTEXT = {
    "max_input_bytes": LIMIT,
    "large_job_threshold_bytes": 0,
    "model_name": "demo",
    "tenants": {
        "acme": ROOMY,
        "beta": ROOMY,
        "tight": {"rate_per_s": 1, "burst": 1, "uploads_per_day": 1000},
        "small": {"rate_per_s": 50, "burst": 50, "uploads_per_day": 2},
    },
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("api-data")
    scene, truth = make_scene(tmp, width=45, height=37, seed=3)
    model = make_model(tmp, scene, truth, name="demo")
    return {"scene": scene, "model": model}


@pytest.fixture(scope="module")
def sb(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("api-sandbox")
    with Sandbox(Options(context=CONTEXT, work_dir=work)) as sandbox:
        sandbox.publish_model(data["model"], "demo")
        sandbox.run_until_idle()
        yield sandbox


@pytest.fixture(scope="module")
def door(sb: Sandbox) -> Iterator[ApiFrontDoor]:
    # the gateway's quota day and the POST gate's "now" stay at the module's start: a run
    # that crosses midnight UTC must not reset a quota halfway through a test
    started = datetime.now(UTC)
    with ApiFrontDoor(sb, clock=lambda: started) as front:
        yield front


@pytest.fixture(scope="module")
def tokens(door: ApiFrontDoor) -> dict[str, str]:
    return {t: door.issue_token(t, "tests") for t in CONTEXT["tenants"]}


def cli(door: ApiFrontDoor, token: str | None, *args: str, cwd: Path | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RASTERDROP_")}
    env["RASTERDROP_API_URL"] = door.url
    env["RASTERDROP_CONFIG"] = "/nonexistent/config.toml"
    if token is not None:
        env["RASTERDROP_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "rasterdrop_client", *args],
        env=env, capture_output=True, text=True, timeout=600, cwd=cwd,
    )  # fmt: skip


def classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def wait_for(sb: Sandbox, key: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sb.keys(key):
            return
        time.sleep(0.3)
    raise AssertionError(f"{key} never appeared")


# ------------------------------------------------------------------ the happy path
def test_submit_wait_download_gives_the_pixels_of_a_direct_upload(
    sb: Sandbox, door: ApiFrontDoor, tokens: dict[str, str], data: dict[str, Path], tmp_path: Path
) -> None:
    client = Client(door.url, tokens["acme"])
    sub = client.submit(data["scene"])
    assert sub.key == f"input/acme/{data['scene'].name}"
    result = sub.wait(timeout=300, poll=0.5)
    assert result.status == "succeeded"
    assert result.doc["summary"]["input"]["key"] == sub.key
    files = result.download(tmp_path / "api")
    assert {f.name for f in files} >= {"classes.tif", "confidence.tif", "preview.png"}

    sb.upload(data["scene"], "input/direct/scene.tif")  # what an operator's `aws s3 cp` does
    wait_for(sb, "output/direct/scene/summary.json")
    direct = sb.download("output/direct/scene/classes.tif", tmp_path / "direct.tif")
    api_pixels = classes(tmp_path / "api" / "classes.tif")
    assert api_pixels.shape == (37, 45)
    np.testing.assert_array_equal(api_pixels, classes(direct))


def test_cli_submit_wait_out(door: ApiFrontDoor, tokens: dict[str, str], data, tmp_path) -> None:
    proc = cli(door, tokens["beta"], "submit", str(data["scene"]), "--wait", "--out",
               str(tmp_path / "results"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"submitted {data['scene'].name} as input/beta/{data['scene'].name}" in proc.stdout
    assert "succeeded" in proc.stdout
    assert (tmp_path / "results" / data["scene"].stem / "classes.tif").is_file()
    usage = cli(door, tokens["beta"], "usage")
    assert usage.returncode == 0 and "beta: 1 of 1000 uploads today" in usage.stdout


# ------------------------------------------------------------------ who may ask
def test_no_token_wrong_token_and_revoked_token(door: ApiFrontDoor, tokens) -> None:
    no_token = cli(door, None, "usage")
    assert no_token.returncode == 4 and "no token" in no_token.stderr
    with pytest.raises(NotAuthorized) as missing:
        Client(door.url, "").usage()
    assert missing.value.status == 401
    good = tokens["acme"]
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with pytest.raises(NotAuthorized) as bad:
        Client(door.url, wrong).usage()
    assert bad.value.status == 401
    assert cli(door, wrong, "usage").returncode == 4
    revoked = door.issue_token("acme", "to revoke")
    assert Client(door.url, revoked).usage()["tenant"] == "acme"
    door.admin.revoke(revoked.split("_")[1])
    with pytest.raises(NotAuthorized) as gone:
        Client(door.url, revoked).usage()
    assert gone.value.status == 403
    assert cli(door, revoked, "usage").returncode == 4


def test_another_tenants_key_is_a_404(door: ApiFrontDoor, tokens, data) -> None:
    sub = Client(door.url, tokens["beta"]).submit(data["scene"], name="secret.tif")
    assert Client(door.url, tokens["beta"]).status(sub.key).status in (
        "pending", "running", "succeeded",
    )  # fmt: skip
    from rasterdrop_client import ClientError

    with pytest.raises(ClientError) as other:
        Client(door.url, tokens["acme"]).status(sub.key)
    assert other.value.status == 404
    with pytest.raises(ClientError) as missing:
        Client(door.url, tokens["acme"]).status("input/acme/never-uploaded.tif")
    assert missing.value.status == 404 and str(other.value) == str(missing.value)


# ------------------------------------------------------------------ limits
def test_over_the_daily_quota_is_429_and_exit_5(door: ApiFrontDoor, tokens, data) -> None:
    client = Client(door.url, tokens["small"])
    client.request_upload("one.tif", 10)
    client.request_upload("two.tif", 10)
    with pytest.raises(OverQuota) as over:
        client.request_upload("three.tif", 10)
    assert over.value.status == 429 and over.value.code == "quota_exceeded"
    proc = cli(door, tokens["small"], "submit", str(data["scene"]))
    assert proc.returncode == 5, proc.stderr
    assert client.usage()["remaining"] == 0
    assert client.http.retries == []  # a quota is never retried


def test_over_the_rate_is_429_then_success_after_backoff(
    door: ApiFrontDoor, tokens, monkeypatch
) -> None:
    """The gateway's token bucket runs on a clock that only the client's backoff advances, so
    the outcome does not depend on how fast this machine serves a request."""
    now = [1000.0]
    monkeypatch.setattr(door.gateway, "monotonic", lambda: now[0])
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    client = Client(door.url, tokens["tight"], retry=Retry(sleep=sleep, base_s=0.3))
    answers = [client.request_upload(f"r{i}.tif", 10)["key"] for i in range(3)]
    assert answers == ["input/tight/r0.tif", "input/tight/r1.tif", "input/tight/r2.tif"]
    statuses = [status for status, _ in client.http.retries]
    assert statuses and set(statuses) == {429}
    assert slept == [delay for _, delay in client.http.retries]
    # rate 1/s, burst 1: each request after the first waited at least a second of backoff
    assert sum(slept) >= 1.99
    assert any(e["status"] == 429 and e["tenant"] == "tight" for e in door.gateway.log)


def test_a_file_over_the_size_limit(
    sb: Sandbox, door: ApiFrontDoor, tokens, tmp_path: Path
) -> None:
    client = Client(door.url, tokens["acme"])
    with pytest.raises(InvalidInput) as declared:
        client.request_upload("big.tif", LIMIT + 1)
    assert declared.value.status == 413 and declared.value.code == "too_large"
    # the policy S3 checks: the cap, whatever size was declared, and the exact key
    grant = client.request_upload("liar.tif", 10)
    policy = json.loads(base64.b64decode(grant["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1, LIMIT] in policy["conditions"]
    assert {"key": "input/acme/liar.tif"} in policy["conditions"]
    big = tmp_path / "liar.tif"
    big.write_bytes(b"II*\x00" + b"\x00" * LIMIT)
    from rasterdrop_client.transport import post_form

    with pytest.raises(InvalidInput, match="EntityTooLarge"):
        post_form(grant["upload"]["url"], grant["upload"]["fields"], big)
    assert sb.keys("input/acme/liar.tif") == []
    assert door.gate.refusals[-1][0] == "EntityTooLarge"
    # and should such a file arrive anyway (an operator's copy), the stack still refuses it
    before = len(sb.messages())
    sb.upload(big, "input/acme/arrived.tif")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not [
        m for m in sb.messages()[before:] if "arrived.tif" in m.subject
    ]:
        time.sleep(0.3)
    notices = [m for m in sb.messages()[before:] if "arrived.tif" in m.subject]
    assert notices and notices[0].subject == "rasterdrop: arrived.tif rejected (too large)"
    status = client.status("input/acme/arrived.tif").doc
    assert status["status"] == "rejected" and status["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../escape.tif", "bad_key"),
        ("sub/../../x.tif", "bad_key"),
        ("bell\x07.tif", "bad_key"),
        ("newline\n.tif", "bad_key"),
        ("notes.txt", "not_a_tiff"),
        ("scene.tif.exe", "not_a_tiff"),
    ],
)
def test_names_the_job_refuses_get_no_upload_url(door, tokens, name: str, code: str) -> None:
    client = Client(door.url, tokens["acme"])
    with pytest.raises(InvalidInput) as refused:
        client.request_upload(name, 10)
    with pytest.raises(KeyRefused) as job:
        check_key(f"input/acme/{name}")
    assert (refused.value.status, refused.value.code) == (400, code)
    assert str(refused.value) == str(job.value)  # the job's own message


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ('say "hi".tif', "unsupported_name", 'contains a double quote ("): rename the file'),
        ("landsat.vrt", "vrt_not_uploadable", "stack the bands into one GeoTIFF"),
        ("deep/SCENE.VRT", "vrt_not_uploadable", "in <name>.bands/"),
    ],
)
def test_names_one_api_upload_cannot_carry_get_no_upload_url(
    door, tokens, name: str, code: str, says: str
) -> None:
    """The bucket takes these (the reject handler answers a quote; a VRT runs with its band
    folder), one presigned POST cannot: refused before a URL exists, naming the file."""
    client = Client(door.url, tokens["acme"])
    with pytest.raises(InvalidInput) as refused:
        client.request_upload(name, 10)
    assert (refused.value.status, refused.value.code) == (400, code)
    assert f"input/acme/{name}" in str(refused.value) and says in str(refused.value)


def test_cli_refuses_a_wrong_extension_with_exit_2(door, tokens, tmp_path: Path) -> None:
    bad = tmp_path / "scene.jpg"
    bad.write_bytes(b"not a tiff")
    proc = cli(door, tokens["acme"], "submit", str(bad))
    assert proc.returncode == 2
    assert "does not end in .tif, .tiff or .vrt" in proc.stderr
