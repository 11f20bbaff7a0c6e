"""``python -m bench sharded``: one scene through the S3 job unsharded (1 job) and sharded
(N children + the assemble job), against moto's server on this machine.

Every part is the real job command (``python -m batch_image predict --bucket … --key …``)
in its own process; the planner runs in this process with a recording submitter (the
part Batch plays), then the children run concurrently, each with ``cores // N`` workers
(as N jobs of that size would), then the assemble job with every core. Reported: wall time
of each phase, the run's wall (planner + slowest child + assembly), the summaries'
``compute.vcpu_s``, the speedup (unsharded wall / sharded wall) and whether the two
``classes.tif`` hold identical pixels. Results: ``bench/results/sharded-<workload>.json|md``
(and ``sharded-latest``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from bench.workloads import DEFAULT_WORK, PLANS, REPO, prepare

RESULTS = REPO / "bench" / "results"
MODEL = "bench"


@dataclass
class Recorder:
    """SubmitJob stand-in: records the planner's two submissions."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def submit_job(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"jobId": f"bench-{len(self.calls)}"}


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106
    )  # fmt: skip


def _env(endpoint: str, bucket: str, scratch: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RASTERDROP_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106
        AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
        RASTERDROP_MODEL_URI=f"s3://{bucket}/models/{MODEL}/", RASTERDROP_SCRATCH_DIR=str(scratch),
    )  # fmt: skip
    env.update(extra)
    return env


def _job(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "batch_image", "predict", *args]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"job exited {proc.returncode}: {out[-500:]} {err[-2000:]}")


def _classes(s3: Any, bucket: str, key: str) -> np.ndarray:
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with rasterio.MemoryFile(data) as mem, mem.open() as src:
        return src.read(1)


def run(workload: str, children: int, work: Path) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer

    from batch_image.jobs import predict_job, shards
    from batch_image.jobs.request import JobRequest
    from batch_image.jobs.settings import Settings
    from batch_image.predict.pipeline import cpu_count

    spec = next(w for plan in PLANS.values() for w in plan if w.name == workload)
    prepared = prepare(spec, work)
    cores = cpu_count()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3, bucket = _client(endpoint), "bench-sharded"
    s3.create_bucket(Bucket=bucket)
    for f in prepared.model.iterdir():
        if f.is_file():
            s3.upload_file(str(f), bucket, f"models/{MODEL}/v1/{f.name}")
    s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/current.json", Body=b'{"version": "v1"}')
    scratch = work / "sharded-scratch"
    result: dict[str, Any] = {"workload": workload, "file_mb": prepared.file_mb,
                              "megapixels": prepared.megapixels, "cores": cores,
                              "children": children}  # fmt: skip
    try:
        # 1 job: the unsharded run
        s3.upload_file(str(prepared.scene), bucket, "input/bench/whole.tif")
        t = time.perf_counter()
        _wait([_job(["--bucket", bucket, "--key", "input/bench/whole.tif"],
                    _env(endpoint, bucket, scratch, RASTERDROP_JOB_VCPUS=str(cores)))])  # fmt: skip
        whole_s = time.perf_counter() - t
        whole = json.loads(s3.get_object(Bucket=bucket, Key="output/bench/whole/summary.json")
                           ["Body"].read())  # fmt: skip
        # N children + the assemble job
        key = "input/bench/sharded.tif"
        s3.upload_file(str(prepared.scene), bucket, key)
        pixels = round(prepared.megapixels * 1e6)
        batch = Recorder()
        settings = Settings(
            model_uri=f"s3://{bucket}/models/{MODEL}/", scratch_dir=scratch,
            shard_pixels=pixels // children + 1 if children > 1 else 0,
            job_queue="q", job_definition="d", job_vcpus=cores,
        )  # fmt: skip
        t = time.perf_counter()
        planned = predict_job.run(JobRequest(bucket, key), settings, s3=s3,
                                  submitter=shards.Submitter(batch, "q", "d"))  # fmt: skip
        plan_s = time.perf_counter() - t
        assert planned.status == "planned", planned
        array, _assemble = batch.calls
        params = array["parameters"]
        args = ["--bucket", bucket, "--key", key, "--part", "shard", "--shards", params["shards"]]
        share = max(1, cores // children)
        t = time.perf_counter()
        _wait([
            _job(args, _env(endpoint, bucket, scratch, AWS_BATCH_JOB_ARRAY_INDEX=str(i),
                            AWS_BATCH_JOB_ID=f"bench-1:{i}", RASTERDROP_WORKERS=str(share),
                            RASTERDROP_JOB_VCPUS=str(share)))
            for i in range(children)
        ])  # fmt: skip
        children_s = time.perf_counter() - t
        args[5] = "assemble"
        t = time.perf_counter()
        _wait([_job(args, _env(endpoint, bucket, scratch, AWS_BATCH_JOB_ID="bench-2",
                               RASTERDROP_JOB_VCPUS=str(cores)))])  # fmt: skip
        assemble_s = time.perf_counter() - t
        sharded = json.loads(s3.get_object(Bucket=bucket, Key="output/bench/sharded/summary.json")
                             ["Body"].read())  # fmt: skip
        same = np.array_equal(
            _classes(s3, bucket, "output/bench/whole/classes.tif"),
            _classes(s3, bucket, "output/bench/sharded/classes.tif"),
        )
    finally:
        server.stop()
    sharded_s = plan_s + children_s + assemble_s
    result.update(
        whole_s=round(whole_s, 1), whole_vcpu_s=whole["compute"]["vcpu_s"],
        plan_s=round(plan_s, 1), children_s=round(children_s, 1),
        assemble_s=round(assemble_s, 1), sharded_s=round(sharded_s, 1),
        sharded_vcpu_s=sharded["compute"]["vcpu_s"], speedup=round(whole_s / sharded_s, 2),
        pixels_identical=bool(same), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )  # fmt: skip
    return result


def markdown(r: dict[str, Any]) -> str:
    return "\n".join([
        f"Measured {r['date']} on {r['cores']} cores (`python -m bench sharded --workload "
        f"{r['workload']} --children {r['children']}`).",
        "",
        "| workload | file MB | Mpx | run | wall s | plan s | children s | assemble s "
        "| vCPU-s | speedup | pixels identical |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {r['workload']} | {r['file_mb']:.0f} | {r['megapixels']:.1f} | 1 job | {r['whole_s']}"
        f" | – | – | – | {r['whole_vcpu_s']:.0f} | 1.00 | |",
        f"| {r['workload']} | {r['file_mb']:.0f} | {r['megapixels']:.1f} | {r['children']} "
        f"children + assemble | {r['sharded_s']} | {r['plan_s']} | {r['children_s']} | "
        f"{r['assemble_s']} | {r['sharded_vcpu_s']:.0f} | {r['speedup']:.2f} | "
        f"{'yes' if r['pixels_identical'] else 'NO'} |",
        "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sharded", description=__doc__)
    parser.add_argument("--workload", default="sweep-640mb")
    parser.add_argument("--children", type=int, default=2)
    parser.add_argument("--work", default=str(DEFAULT_WORK))
    args = parser.parse_args(argv)
    result = run(args.workload, args.children, Path(args.work))
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = markdown(result)
    for name in ("sharded-latest", f"sharded-{args.workload}"):
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(table)
    print(table)
    return 0 if result["pixels_identical"] else 1
