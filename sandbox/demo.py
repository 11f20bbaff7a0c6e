"""``make demo``: sample scene → trained model → upload → email, all on this machine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox.core import REPO_ROOT, Message, Options, Sandbox
from sandbox.email import format_email
from sandbox.errors import SandboxError
from sandbox.serve import api_context, show_client_path
from sandbox.server import leak_free_environ

Echo = Callable[[str], None]
OUTPUT_FILES = ("classes.tif", "confidence.tif", "preview.png", "summary.json")
# the sample generator's default scene (~40 MB) and the demo random forest of 100 trees
DEFAULT_SIZE = (2600, 2000)
DEFAULT_TREES = 100


@dataclass(frozen=True)
class DemoData:
    scene: Path  # what is uploaded and predicted
    train_image: Path
    train_labels: Path


def batch_image(*args: str, cwd: Path = REPO_ROOT) -> str:
    """Run ``python -m batch_image ARGS`` (the same CLI the job image runs); its stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "batch_image", *args],
        cwd=cwd,
        env=leak_free_environ(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SandboxError(
            f"`batch_image {' '.join(args[:1])}` failed ({proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}"
        )
    return proc.stdout


def raster_kind(path: Path) -> tuple[int, str]:
    import rasterio

    with rasterio.open(path) as src:
        return src.count, src.dtypes[0]


def prepare_data(
    work: Path,
    scene: Path | None,
    labels: Path | None,
    size: tuple[int, int],
    echo: Echo,
) -> DemoData:
    """The scene to predict and what to train on (the sample, unless labels are given)."""
    if scene is not None and labels is not None:
        return DemoData(scene, scene, labels)
    data = work / "data"
    args = ["sample", "--out", str(data), "--width", str(size[0]), "--height", str(size[1])]
    if scene is not None:  # train on a sample shaped like the given scene
        count, dtype = raster_kind(scene)
        args += ["--bands", str(count), "--dtype", dtype]
    t = time.perf_counter()
    batch_image(*args)
    echo(f"  sample scene {size[0]} × {size[1]} px written in {time.perf_counter() - t:.1f} s")
    sample = data / "scene.tif"
    return DemoData(scene or sample, sample, data / "labels.tif")


def classes_of(labels: Path) -> list[dict]:
    """Class ids, names and colours from the label raster's tags (the sample writes them)."""
    import rasterio

    with rasterio.open(labels) as src:
        raw = src.tags().get("RASTERDROP_CLASSES")
    if not raw:
        raise SandboxError(f"{labels} has no RASTERDROP_CLASSES tag: give a manifest instead")
    return json.loads(raw)


def manifest_for(name: str, data: DemoData, trees: int, image: str, labels: str) -> dict:
    return {
        "name": name,
        "classes": classes_of(data.train_labels),
        "samples": [{"image": image, "labels": labels}],
        "estimator": {"type": "random_forest", "params": {"n_estimators": trees}},
        "max_samples_per_class": 2000,
        "promote": True,
    }


def train_model(sb: Sandbox, data: DemoData, trees: int, echo: Echo) -> str:
    """Train the stack's model the way a user would: a manifest uploaded under `training/`
    starts the train job through its rule; the job publishes and promotes the version."""
    name = sb.config.model_name
    t = time.perf_counter()
    before = len(sb.messages())
    manifest_key = sb.train_manifest_key(name)
    prefix = manifest_key.rsplit("/", 1)[0] + "/"
    sb.upload(data.train_image, prefix + "scene.tif")
    sb.upload(data.train_labels, prefix + "labels.tif")
    manifest = manifest_for(name, data, trees, "scene.tif", "labels.tif")
    sb.upload(json.dumps(manifest, indent=2).encode(), manifest_key)
    sb.run_until_idle()
    for m in sb.messages()[before:]:
        echo(f"  training email: {m.subject}")
    failed = [j for j in sb.jobs if j.status == "FAILED" and j.command[:1] == ["train"]]
    if failed:
        tail = failed[-1].attempts[-1].log_path.read_text(errors="replace")[-1500:]
        raise SandboxError(f"the train job failed; the end of its log:\n{tail}")
    version = current_version(sb, name)
    elapsed = time.perf_counter() - t
    echo(
        f"  model {name} version {version} trained in {elapsed:.1f} s "
        f"(train job: {manifest_key} → rule → Batch)"
    )
    return version


def current_version(sb: Sandbox, name: str) -> str:
    try:
        key = f"{sb.prefix('models')}{name}/current.json"
        body = sb.s3.get_object(Bucket=sb.bucket, Key=key)["Body"]
    except sb.s3.exceptions.NoSuchKey as exc:
        raise SandboxError(f"training published no {key}") from exc
    return json.loads(body.read())["version"]


def links_in(body: str) -> list[str]:
    return re.findall(r"https?://\S+", body)


def check_link(url: str) -> tuple[int, int]:
    """Follow the email's link like a browser; (status, bytes)."""
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - local endpoint
        return resp.status, len(resp.read())


def copy_outputs(sb: Sandbox, key: str, version: str, out: Path) -> list[Path]:
    """The result files and the model version into ``out`` (from the sandbox bucket)."""
    stem = key[len(sb.prefix("input")) :].rsplit(".", 1)[0]
    copied = []
    for name in OUTPUT_FILES:
        copied.append(sb.download(f"{sb.prefix('output')}{stem}/{name}", out / name))
    model_prefix = f"{sb.prefix('models')}{sb.config.model_name}/{version}/"
    if (out / "model").exists():
        shutil.rmtree(out / "model")
    for k in sb.keys(model_prefix):
        copied.append(sb.download(k, out / "model" / k[len(model_prefix) :]))
    return copied


def run_demo(
    out: Path,
    *,
    scene: Path | None = None,
    labels: Path | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    trees: int = DEFAULT_TREES,
    keep_running: bool = False,
    echo: Echo = print,
    context: dict[str, str] | None = None,
) -> int:
    """``context``: stack context overrides (``-c key=value``), as ``cdk synth -c`` takes."""
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".sandbox"
    shutil.rmtree(work, ignore_errors=True)
    echo("rasterdrop demo: the stack's flow on this machine (moto server as S3, SNS, SQS)")
    data = prepare_data(work, scene, labels, size, echo)
    t = time.perf_counter()
    with Sandbox(Options(work_dir=work, context={**api_context(), **(context or {})})) as sb:
        echo(
            f"  stack synthesized and embedded AWS up in {time.perf_counter() - t:.1f} s: "
            f"{len(sb.rules)} rules, {len(sb.job_definitions)} job definitions, "
            f"{len(sb.functions)} functions, endpoint {sb.server.endpoint}"
        )
        version = train_model(sb, data, trees, echo)
        key = f"{sb.prefix('input')}demo/{data.scene.name}"
        echo(f"  uploading {data.scene.name} to s3://{sb.bucket}/{key}")
        before, trace_from = len(sb.messages()), len(sb.trace)
        uploaded_at = time.time()
        sb.upload(data.scene, key)
        sb.run_until_idle()
        news = sb.messages()[before:]
        message = _message_for(news, key)
        took = message.timestamp.timestamp() - uploaded_at
        topic_name = _display_name(sb, message.topic)
        echo("  flow (from the synthesized template):")
        for line in flow_lines(sb, trace_from):
            echo(f"    {line}")
        echo("")
        echo("=" * 78)
        echo(format_email(message, sb.recipients(message), topic_name))
        echo("=" * 78)
        echo("")
        echo(f"Upload to email: {took:.1f} s")
        links = links_in(message.body)
        if links:
            status, size_bytes = check_link(links[0])
            echo(f"First link checked: HTTP {status}, {size_bytes:,} bytes (curl -L works too)")
        copied = copy_outputs(sb, key, version, out)
        echo(
            f"Outputs copied to {out}/: "
            + ", ".join(sorted({p.relative_to(out).parts[0] for p in copied}))
        )
        show_client_path(sb, data.scene, out, echo)
        echo(f"Logs of the job and handlers: {work / 'logs'}/")
        if keep_running:
            wait_until_interrupted(echo)
        else:
            echo("The links work while the sandbox runs: `python -m sandbox demo --keep-running`.")
    return 0


def wait_until_interrupted(echo: Echo) -> None:
    """Keep the endpoint (and the email's links) up until Ctrl-C or SIGTERM."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    echo("The endpoint and the links stay up until Ctrl-C.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopped")


def flow_lines(sb: Sandbox, start: int) -> list[str]:
    """The deliveries since ``start`` that a rule made: event → rule → target → outcome."""
    lines = []
    for d in sb.trace[start:]:
        if d.rule is None:
            continue
        outcome = d.outcome if len(d.outcome) <= 60 else d.outcome[:57] + "..."
        lines.append(f"{d.summary} → {d.rule} → {d.kind} {d.target}: {outcome}")
    for job in sb.jobs:
        codes = ", ".join(str(a.outcome.exit_code) for a in job.attempts)
        if any(job.job_id in line for line in lines):
            lines.append(f"job {job.job_id[:8]} {job.status}, exit code(s) {codes}")
    return lines


def _message_for(messages: list[Message], key: str) -> Message:
    name = key.rsplit("/", 1)[-1]
    for m in messages:
        if name in m.subject or name in m.body:
            return m
    raise SandboxError(
        f"no notification arrived for {key} (messages: {[m.subject for m in messages]})"
    )


def _display_name(sb: Sandbox, topic: str) -> str:
    props = sb.template["Resources"].get(topic, {}).get("Properties", {})
    name = props.get("DisplayName")
    return name if isinstance(name, str) else ""
