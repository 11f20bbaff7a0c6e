"""AWS Batch's SubmitJob for jobs that submit jobs: array jobs and dependencies, locally.

A sharded run's planner (``batch_image.jobs.shards``) calls ``batch:SubmitJob`` with boto3;
``AWS_ENDPOINT_URL_BATCH`` points it at :class:`BatchApiServer`, which hands the request to
:class:`JobScheduler`. What Batch does, the scheduler does:

* the job definition (by name, name:revision or ARN) and the queue (by ARN or name) must
  be the template's, else ``ClientException`` (HTTP 400), as Batch answers;
* ``arrayProperties.size`` N (2..10,000) makes a parent job and N children
  ``<parent>:<i>``, each a job of its own with ``AWS_BATCH_JOB_ARRAY_INDEX=i``, its own
  attempts and the definition's retry strategy, run concurrently on the bus's job pool;
  the parent is PENDING while they run, then SUCCEEDED when every child succeeded, else
  FAILED;
* ``dependsOn``: the job waits (PENDING) until every job it depends on has ended; if one
  FAILED, it fails without an attempt, ``statusReason`` "Dependent Job failed".

Every state change becomes a "Job State Change" event through the runner, as for the
jobs the rules submit (children carry ``arrayProperties.index``, the parent
``arrayProperties.size``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from sandbox.batch import BatchRunner, Job, now_ms
from sandbox.httpd import LocalServer, QuietHandler
from sandbox.stack import JobDefinition

DEPENDENT_FAILED = "Dependent Job failed"
MIN_ARRAY, MAX_ARRAY = 2, 10_000


class ClientException(Exception):
    """What Batch answers a request it refuses (HTTP 400)."""


class JobScheduler:
    """SubmitJob's array jobs and dependencies over a :class:`BatchRunner`."""

    def __init__(
        self,
        runner: BatchRunner,
        definitions: Mapping[str, JobDefinition],
        queues: Iterable[str],
        pool: Executor,
        track: Callable[[Future[Any]], None],
        jobs: list[Job],
        default_overrides: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> None:
        self.runner = runner
        self.definitions = definitions
        self.queues = set(queues)
        self.pool = pool
        self.track = track
        self.jobs = jobs
        self.default_overrides = default_overrides  # the bus's test overrides
        self._waiters = ThreadPoolExecutor(64, thread_name_prefix="batch-wait")
        self._ended: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ SubmitJob
    def submit(self, request: Mapping[str, Any]) -> dict[str, str]:
        """SubmitJob: checks as Batch does, then the job runs (or waits) in the background."""
        definition = self._definition(str(request.get("jobDefinition", "")))
        queue = self._queue(str(request.get("jobQueue", "")))
        params = request.get("parameters") or {}
        if not all(isinstance(v, str) for v in params.values()):
            raise ClientException("parameters must map names to strings")
        size = (request.get("arrayProperties") or {}).get("size")
        if size is not None and not MIN_ARRAY <= int(size) <= MAX_ARRAY:
            raise ClientException(f"array size {size} is not between {MIN_ARRAY} and {MAX_ARRAY}")
        depends = [str(d["jobId"]) for d in request.get("dependsOn") or []]
        unknown = [d for d in depends if d not in self._ended]
        if unknown:
            raise ClientException(f"dependsOn names unknown jobs: {unknown}")
        job = self.runner.submit(
            queue_arn=queue,
            definition=definition,
            job_name=str(request.get("jobName", "")),
            parameters=params,
            overrides=request.get("containerOverrides") or self.default_overrides(),
        )
        job.depends_on = depends
        job.array_size = int(size) if size is not None else None
        with self._lock:
            self._ended[job.job_id] = threading.Event()
            self.jobs.append(job)
        self.track(self._waiters.submit(self._run, job))
        return {"jobArn": job.arn, "jobName": job.name, "jobId": job.job_id}

    def _definition(self, ref: str) -> JobDefinition:
        name = ref.rsplit("/", 1)[-1].split(":")[0]
        for d in self.definitions.values():
            if ref in (d.arn, d.name) or name == d.name:
                return d
        raise ClientException(f"job definition {ref!r} does not exist")

    def _queue(self, ref: str) -> str:
        for arn in self.queues:
            if ref in (arn, arn.rsplit("/", 1)[-1]):
                return arn
        raise ClientException(f"job queue {ref!r} does not exist")

    # ------------------------------------------------------------------ running
    def _run(self, job: Job) -> None:
        try:
            self.runner.announce(job, "SUBMITTED")
            if job.depends_on:
                self.runner.announce(job, "PENDING")
                failed = self._wait_for(job.depends_on)
                if failed:
                    self.runner.end_without_attempt(job, DEPENDENT_FAILED)
                    return
            if job.array_size is None:
                self.pool.submit(self.runner.run, job).result()
            else:
                self._run_array(job)
        finally:
            self._ended[job.job_id].set()

    def _wait_for(self, job_ids: list[str]) -> bool:
        """Wait until every job has ended; whether one of them FAILED."""
        for job_id in job_ids:
            self._ended[job_id].wait()
        by_id = {j.job_id: j for j in self.jobs}
        return any(by_id[j].status == "FAILED" for j in job_ids)

    def _run_array(self, parent: Job) -> None:
        """The children, concurrently on the job pool; the parent ends when they all have."""
        assert parent.array_size is not None
        self.runner.announce(parent, "PENDING")
        children = [self._child(parent, i) for i in range(parent.array_size)]
        with self._lock:
            self.jobs.extend(children)
        parent.children = children
        futures = [self.pool.submit(self.runner.run, child) for child in children]
        for future in futures:
            future.result()
        ok = all(c.status == "SUCCEEDED" for c in children)
        parent.started_ms = min((c.started_ms or now_ms()) for c in children)
        reason = "" if ok else "Array Child Job failed"
        self.runner.end_without_attempt(parent, reason, status="SUCCEEDED" if ok else "FAILED")

    def _child(self, parent: Job, index: int) -> Job:
        return replace(
            parent,
            job_id=f"{parent.job_id}:{index}",
            environment={**parent.environment, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)},
            created_ms=now_ms(),
            attempts=[],
            status="SUBMITTED",
            array_size=None,
            array_index=index,
            depends_on=[],
            children=[],
        )

    def close(self) -> None:
        self._waiters.shutdown(wait=False, cancel_futures=True)


class BatchApiServer:
    """Batch's REST-JSON ``POST /v1/submitjob`` in front of ``submit`` (a
    :meth:`JobScheduler.submit`; ``AWS_ENDPOINT_URL_BATCH``); other operations are refused."""

    def __init__(self, submit: Callable[[Mapping[str, Any]], dict[str, str]]) -> None:
        outer = self
        self.submit = submit
        self.requests: list[dict[str, Any]] = []

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                status, answer = outer.handle(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", answer["__type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = LocalServer(Handler)
        self.endpoint = self._http.endpoint

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path.rstrip("/") != "/v1/submitjob":
            return 400, {"__type": "ClientException", "message": f"{path} is not emulated"}
        self.requests.append(body)
        try:
            return 200, self.submit(body)
        except ClientException as exc:
            return 400, {"__type": "ClientException", "message": str(exc)}

    def start(self) -> BatchApiServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
