"""AWS Batch, locally: a job definition's command run as a subprocess, attempt by attempt.

The argv is the image's ENTRYPOINT (from the Dockerfile) followed by the job definition's
command with ``Ref::name`` arguments replaced by the job's parameters (submitted ones over
the definition's defaults). The environment is the definition's, plus what Batch and ECS
set (``AWS_BATCH_JOB_ID``, ``AWS_BATCH_JOB_ATTEMPT``, ...) and what points boto3 at the
embedded AWS. The definition's timeout kills an attempt; the retry strategy decides what
follows each failed attempt. Every state the job passes through becomes a Batch
"Job State Change" event in AWS's shape.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.retry import AttemptOutcome, decide
from sandbox.stack import JobDefinition

STATUS_REASON_EXITED = "Essential container in task exited"
# AWS's texts for a job that cannot be placed and for its cancellation by the queue's time
# limit (https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_capacity.html)
NO_CAPACITY = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested "
    "for instance type [c6i.2xlarge]"
)
CANCELED_BY_TIME_LIMIT = "Canceled by JobStateTimeLimit action due to reason: {reason}"
STATUS_REASON_TIMEOUT = "Job attempt duration exceeded timeout"
FAULTS_DIR = Path(__file__).resolve().parent / "faults"


@dataclass
class Attempt:
    number: int
    started_ms: int
    stopped_ms: int
    outcome: AttemptOutcome
    log_path: Path
    task_id: str


@dataclass
class Job:
    """One submitted job and what happened to it."""

    job_id: str
    name: str
    queue_arn: str
    definition: JobDefinition
    parameters: dict[str, str]
    command: list[str]
    environment: dict[str, str]
    created_ms: int
    attempts: list[Attempt] = field(default_factory=list)
    status: str = "SUBMITTED"
    status_reason: str = ""
    started_ms: int | None = None
    stopped_ms: int | None = None
    # array jobs and dependencies (sandbox.arrays): a parent's size, a child's index
    array_size: int | None = None
    array_index: int | None = None
    depends_on: list[str] = field(default_factory=list)
    children: list[Job] = field(default_factory=list)

    @property
    def arn(self) -> str:
        region_account = self.queue_arn.split(":")[3:5]
        return f"arn:aws:batch:{region_account[0]}:{region_account[1]}:job/{self.job_id}"


def substitute(command: tuple[str, ...] | list[str], parameters: Mapping[str, str]) -> list[str]:
    """Batch parameter substitution: an argument ``Ref::name`` becomes the parameter's value."""
    out = []
    for arg in command:
        if arg.startswith("Ref::") and arg[5:] in parameters:
            out.append(parameters[arg[5:]])
        else:
            out.append(arg)
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class BatchRunner:
    """Runs jobs of the template's definitions as local processes."""

    entrypoint: list[str]
    workdir: Path
    aws_env: dict[str, str]
    base_env: dict[str, str]
    log_dir: Path
    scratch_dir: Path
    region: str
    account: str
    # Fault injection for tests: extra variables given to one attempt number (of the jobs
    # `fault_jobs` accepts, when set: e.g. one child of an array job).
    faults: dict[int, dict[str, str]] = field(default_factory=dict)
    fault_jobs: Callable[[Job], bool] | None = None
    on_state: Callable[[Job], None] | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Capacity emulation: a statusReason (e.g. NO_CAPACITY) that keeps every job RUNNABLE, the
    # queues' time limits (queue ARN -> reason -> seconds, `queue_time_limits`), and where the
    # "Batch Job Queue Blocked" event goes.
    hold_runnable: str | None = None
    time_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    on_event: Callable[[dict[str, Any]], None] | None = None

    def submit(
        self,
        *,
        queue_arn: str,
        definition: JobDefinition,
        job_name: str,
        parameters: Mapping[str, str],
        overrides: Mapping[str, Any] | None = None,
    ) -> Job:
        """SubmitJob: parameters merged over the definition's defaults, overrides applied."""
        params = {**definition.parameters, **dict(parameters)}
        env = dict(definition.environment)
        command = list(definition.command)
        if overrides:
            for item in overrides.get("Environment", overrides.get("environment", [])):
                env[item.get("Name", item.get("name"))] = item.get("Value", item.get("value"))
            command = list(overrides.get("Command", overrides.get("command", command)))
        job = Job(
            job_id=str(uuid.uuid4()),
            name=job_name,
            queue_arn=queue_arn,
            definition=definition,
            parameters=params,
            command=substitute(command, params),
            environment=env,
            created_ms=now_ms(),
        )
        return job

    def _state(self, job: Job, status: str) -> None:
        job.status = status
        if self.on_state:
            self.on_state(job)

    def announce(self, job: Job, status: str) -> None:
        """A state change without an attempt (SUBMITTED, PENDING of a waiting job)."""
        self._state(job, status)

    def end_without_attempt(self, job: Job, reason: str, status: str = "FAILED") -> None:
        """End a job no container ran for: a failed dependency, or an array's parent."""
        job.status_reason = reason
        job.stopped_ms = now_ms()
        self._state(job, status)

    def run(self, job: Job) -> Job:
        """Move the job through its states and attempts until SUCCEEDED or FAILED."""
        for status in ("SUBMITTED", "PENDING", "RUNNABLE"):
            self._state(job, status)
        if self.hold_runnable:
            return self._held(job, self.hold_runnable)
        attempt = 1
        while True:
            self._state(job, "STARTING")
            job.started_ms = job.started_ms or now_ms()
            self._state(job, "RUNNING")
            record = self._attempt(job, attempt)
            job.attempts.append(record)
            verdict = decide(job.definition.retry, record.outcome, attempt)
            job.status_reason = record.outcome.status_reason
            if verdict == "RETRY":
                attempt += 1
                self._state(job, "RUNNABLE")
                continue
            job.stopped_ms = record.stopped_ms
            self._state(job, verdict)
            return job

    def _held(self, job: Job, status_reason: str) -> Job:
        """No instance can be had: Batch reports the blocked queue, then the queue's time limit
        for that reason cancels the job (FAILED, no attempts). The wait itself is not slept:
        the sandbox moves the clock on. Without a matching time limit the job stays RUNNABLE,
        as in Batch, where it would wait forever."""
        job.status_reason = status_reason
        self._state(job, "RUNNABLE")
        if self.on_event:
            self.on_event(job_queue_blocked_event(job, region=self.region, account=self.account))
        reason = status_reason.split(" - ", 1)[0].strip()
        if reason not in self.time_limits.get(job.queue_arn, {}):
            return job
        job.status_reason = CANCELED_BY_TIME_LIMIT.format(reason=reason)
        job.stopped_ms = now_ms()
        self._state(job, "FAILED")
        return job

    def _attempt(self, job: Job, number: int) -> Attempt:
        task_id = uuid.uuid4().hex
        scratch = self.scratch_dir / f"{job.job_id}-{number}"
        scratch.mkdir(parents=True, exist_ok=True)
        env = {
            **self.base_env,
            **job.environment,
            **self.aws_env,
            "AWS_BATCH_JOB_ID": job.job_id,
            "AWS_BATCH_JOB_ATTEMPT": str(number),
            "AWS_BATCH_JQ_NAME": job.queue_arn.rsplit("/", 1)[-1],
            "AWS_BATCH_CE_NAME": "sandbox",
            "TMPDIR": str(scratch),
            "HOME": str(scratch),
        }
        if "AWS_DEFAULT_REGION" in job.environment:
            env["AWS_DEFAULT_REGION"] = job.environment["AWS_DEFAULT_REGION"]
        fault = self.faults.get(number)
        if fault and (self.fault_jobs is None or self.fault_jobs(job)):
            env.update(fault)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(FAULTS_DIR), env.get("PYTHONPATH", "")) if p
            )
        argv = [*self.entrypoint, *job.command]
        log_path = self.log_dir / f"{job.name}-{job.job_id[:8]}-attempt{number}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = now_ms()
        timed_out = False
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.processes[job.job_id] = proc
            try:
                proc.wait(timeout=job.definition.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            finally:
                self.processes.pop(job.job_id, None)
        code = proc.returncode
        if code < 0:
            code = 128 - code  # a signal: Docker reports 128 + signal number
        outcome = AttemptOutcome(
            exit_code=code,
            status_reason=STATUS_REASON_TIMEOUT if timed_out else STATUS_REASON_EXITED,
        )
        return Attempt(number, started, now_ms(), outcome, log_path, task_id)


def job_state_event(job: Job, *, region: str, account: str) -> dict[str, Any]:
    """The Batch "Job State Change" event for ``job`` in its current state."""
    d = job.definition
    container: dict[str, Any] = {
        "image": d.image,
        "command": list(job.command),
        "jobRoleArn": "",
        "volumes": [],
        "environment": [{"name": k, "value": v} for k, v in job.environment.items()],
        "mountPoints": [],
        "ulimits": [],
        "networkInterfaces": [],
        "resourceRequirements": [
            r
            for r in (
                {"value": d.vcpus, "type": "VCPU"} if d.vcpus else None,
                {"value": d.memory_mib, "type": "MEMORY"} if d.memory_mib else None,
            )
            if r
        ],
        "secrets": [],
    }
    attempts = []
    for a in job.attempts:
        entry: dict[str, Any] = {
            "container": {
                "containerInstanceArn": (
                    f"arn:aws:ecs:{region}:{account}:container-instance/sandbox/{a.task_id}"
                ),
                "taskArn": f"arn:aws:ecs:{region}:{account}:task/sandbox/{a.task_id}",
                "logStreamName": f"rasterdrop/default/{a.task_id}",
                "networkInterfaces": [],
            },
            "startedAt": a.started_ms,
            "stoppedAt": a.stopped_ms,
            "statusReason": a.outcome.status_reason,
        }
        if a.outcome.exit_code is not None:
            entry["container"]["exitCode"] = a.outcome.exit_code
        if a.outcome.reason:
            entry["container"]["reason"] = a.outcome.reason
        attempts.append(entry)
    if job.attempts and job.status in ("SUCCEEDED", "FAILED"):
        last = job.attempts[-1]
        if last.outcome.exit_code is not None:
            container["exitCode"] = last.outcome.exit_code
        if last.outcome.reason:
            container["reason"] = last.outcome.reason
        container["logStreamName"] = f"rasterdrop/default/{last.task_id}"
    detail: dict[str, Any] = {
        "jobArn": job.arn,
        "jobName": job.name,
        "jobId": job.job_id,
        "jobQueue": job.queue_arn,
        "status": job.status,
        "attempts": attempts,
        "createdAt": job.created_ms,
        "retryStrategy": d.retry.to_event(),
        "dependsOn": [{"jobId": j, "type": "SEQUENTIAL"} for j in job.depends_on],
        "jobDefinition": d.arn,
        "parameters": dict(job.parameters),
        "container": container,
        "tags": {**d.tags, "resourceArn": job.arn},
        "propagateTags": d.propagate_tags,
        "platformCapabilities": list(d.platform),
        "eksAttempts": [],
    }
    if job.status_reason and job.status in ("SUCCEEDED", "FAILED", "RUNNABLE"):
        detail["statusReason"] = job.status_reason
    if job.started_ms is not None and job.status in ("RUNNING", "SUCCEEDED", "FAILED"):
        detail["startedAt"] = job.started_ms
    if job.stopped_ms is not None and job.status in ("SUCCEEDED", "FAILED"):
        detail["stoppedAt"] = job.stopped_ms
    if d.timeout_s:
        detail["timeout"] = {"attemptDurationSeconds": d.timeout_s}
    if job.array_index is not None:
        detail["arrayProperties"] = {"index": job.array_index}
    elif job.array_size is not None:
        summary: dict[str, int] = {}
        for child in job.children:
            summary[child.status] = summary.get(child.status, 0) + 1
        detail["arrayProperties"] = {"size": job.array_size, "statusSummary": summary}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [job.arn],
        "detail": detail,
    }


def job_queue_blocked_event(job: Job, *, region: str, account: str) -> dict[str, Any]:
    """Batch's "Job Queue Blocked" event: the RUNNABLE job at the head of the queue, its
    reason in ``statusReason`` (batch-job-queue-blocked-events.html)."""
    event = job_state_event(job, region=region, account=account)
    event["detail-type"] = "Batch Job Queue Blocked"
    event["resources"] = [job.arn, job.queue_arn]
    return event


def queue_time_limits(template: dict[str, Any], resolve: Callable[[Any], Any]) -> dict:
    """Queue ARN -> {reason: seconds} of the template's CANCEL-in-RUNNABLE time limits."""
    limits: dict[str, dict[str, int]] = {}
    for logical_id, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Batch::JobQueue":
            continue
        arn = resolve({"Ref": logical_id})
        for action in res.get("Properties", {}).get("JobStateTimeLimitActions", []):
            if action.get("Action") == "CANCEL" and action.get("State") == "RUNNABLE":
                limits.setdefault(arn, {})[action["Reason"]] = int(action["MaxTimeSeconds"])
    return limits
