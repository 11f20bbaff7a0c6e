"""EventBridge, locally: the template's rules matched against events, delivered to targets.

An event is matched against every enabled rule; each target of a matching rule gets the
input EventBridge would send (Input, InputPath, InputTransformer or the event) and is one
of: a Batch job queue (the job runs as a subprocess, retried per its strategy, and every
state change comes back as a Batch "Job State Change" event), a Lambda function (invoked
in process, retried as its EventInvokeConfig says), an SNS topic or an SQS queue. What
cannot be delivered or keeps failing goes to the dead-letter queue the template names.
Event sources other than Batch (the S3 buckets) put their events here from outside.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sandbox import stack as st
from sandbox.arrays import JobScheduler
from sandbox.batch import BatchRunner, Job, job_state_event
from sandbox.errors import SandboxError
from sandbox.eventpattern import matches
from sandbox.lambdas import Invocation, LambdaRuntime
from sandbox.transformer import extract, render

# Lambda's default for asynchronous invocations without an EventInvokeConfig.
DEFAULT_ASYNC_RETRIES = 2


@dataclass
class Delivery:
    """One event handed to one rule target (or matched by no rule)."""

    event_id: str
    summary: str
    rule: str | None
    target: str | None
    kind: str | None
    outcome: str


def render_input(target: st.Target, event: dict[str, Any]) -> str:
    """What EventBridge sends to the target: Input, InputPath, InputTransformer, or the event."""
    if target.input is not None:
        return target.input
    if target.input_path:
        found, value = extract(event, target.input_path)
        return json.dumps(value if found else None)
    if target.transformer is not None:
        return render(target.transformer.paths, target.transformer.template, event)
    return json.dumps(event)


def async_retries(template: dict[str, Any]) -> dict[str, int]:
    """function logical id -> MaximumRetryAttempts of its EventInvokeConfig."""
    retries = {}
    for res in st.resources_of(template, "AWS::Lambda::EventInvokeConfig").values():
        props = res.get("Properties", {})
        function_id = st.referenced_id(props.get("FunctionName"))
        if function_id is not None:
            retries[function_id] = int(props.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
    return retries


def summary(event: dict[str, Any]) -> str:
    """One line naming the event in the trace."""
    detail = event.get("detail", {})
    if event.get("source") == "aws.s3":
        return f"s3 {event.get('detail-type')} {detail.get('object', {}).get('key')}"
    if event.get("source") == "aws.batch":
        return f"batch {detail.get('jobName')} {detail.get('status')}"
    return f"{event.get('source')} {event.get('detail-type')}"


class EventBus:
    """The default event bus of the sandbox's account, with the template's rules on it.

    `runner` reports its jobs' state changes back to this bus; `queue_urls` maps queue
    logical ids to their URLs (provisioned before); `on_invoked` runs after every successful
    Lambda invocation (the sandbox collects the SNS messages a handler published then).
    """

    def __init__(
        self,
        *,
        rules: list[st.Rule],
        job_definitions: Mapping[str, st.JobDefinition],
        functions: Mapping[str, st.Function],
        retries: Mapping[str, int],
        runner: BatchRunner,
        lambdas: LambdaRuntime,
        sns: Any,
        sqs: Any,
        queue_urls: Mapping[str, str],
        job_concurrency: int,
        on_invoked: Callable[[], None] = lambda: None,
    ) -> None:
        self.rules = rules
        self.job_definitions = job_definitions
        self.functions = functions
        self.retries = retries
        self.runner = runner
        self.lambdas = lambdas
        self.sns, self.sqs = sns, sqs
        self.queue_urls = queue_urls
        self.on_invoked = on_invoked
        self.trace: list[Delivery] = []
        self.jobs: list[Job] = []
        self.dead_letters: list[tuple[str, str, str]] = []  # (rule, target, reason)
        self.container_overrides: dict[str, Any] | None = None
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._futures: set[Future] = set()
        self._pool = ThreadPoolExecutor(max_workers=job_concurrency, thread_name_prefix="batch")
        runner.on_state = self._job_state
        # jobs submitted by jobs (a sharded run's array job and assemble job)
        self.scheduler = JobScheduler(
            runner,
            job_definitions,
            {t.arn for r in rules for t in r.targets if t.kind == "batch"},
            self._pool,
            self._futures_add,
            self.jobs,
            lambda: self.container_overrides,
        )

    def _futures_add(self, future: Future[Any]) -> None:
        self._futures.add(future)

    def put(self, event: dict[str, Any]) -> None:
        """PutEvents: queue an event for matching (EventBridge delivers at least once)."""
        self._events.put(event)

    def run_until_idle(
        self, timeout: float, poll: Callable[[], None] | None = None, *, wait: float = 0.25
    ) -> None:
        """Deliver events until none is queued and no job runs.

        Driven by the events themselves: S3 (``sandbox.s3events.S3EventTap``), the Batch
        runner and the Lambda handlers put theirs on the queue as they happen, so the loop
        blocks on the queue (``wait`` seconds at a time, to notice jobs ending) instead of
        listing anything. Every source puts its events before the work that caused them
        ends (a job's writes before its process exits, its state changes before its thread
        returns), so an empty queue with no job running is idle. ``poll``, if given, lets
        another source put its events after every delivery and while waiting.
        """
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise SandboxError(f"the flow did not settle within {timeout:.0f} s")
            try:
                event = self._events.get(timeout=wait)
            except queue.Empty:
                self._futures = {f for f in self._futures if not f.done()}
                if poll is not None:
                    poll()
                if self._events.empty() and not self._futures:
                    return
                continue
            self._dispatch(event)
            if poll is not None:
                poll()

    def close(self) -> None:
        """Kill running jobs and wait for their threads: nothing outlives the sandbox."""
        for proc in list(self.runner.processes.values()):
            proc.kill()
        self.scheduler.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------ matching
    def _job_state(self, job: Job) -> None:
        self.put(job_state_event(job, region=self.runner.region, account=self.runner.account))

    def _dispatch(self, event: dict[str, Any]) -> None:
        line = summary(event)
        matched = False
        for rule in self.rules:
            if not rule.enabled or not matches(rule.pattern, event):
                continue
            matched = True
            for target in rule.targets:
                outcome = self._deliver(rule, target, event)
                self.trace.append(
                    Delivery(
                        event["id"], line, rule.logical_id, target.resource, target.kind, outcome
                    )
                )
        if not matched:
            self.trace.append(Delivery(event["id"], line, None, None, None, "no rule matched"))

    # ------------------------------------------------------------ targets
    def _deliver(self, rule: st.Rule, target: st.Target, event: dict[str, Any]) -> str:
        payload = render_input(target, event)
        if target.kind == "batch":
            return self._submit(rule, target, payload)
        if target.kind == "lambda":
            return self._invoke(rule, target, payload)
        if target.kind == "sns":
            self.sns.publish(TopicArn=target.arn, Message=payload)
            return "published"
        if target.kind == "sqs":
            self.sqs.send_message(QueueUrl=self.queue_urls[target.resource], MessageBody=payload)
            return "queued"
        return f"target {target.arn} not modelled by the sandbox"

    def _submit(self, rule: st.Rule, target: st.Target, payload: str) -> str:
        """SubmitJob with the rendered Parameters; input Batch refuses is dead-lettered."""
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as exc:
            return self._dead_letter(
                rule, target, payload, f"input is not JSON ({exc.msg})", target.dead_letter_arn
            )
        params = body.get("Parameters", {}) if isinstance(body, dict) else None
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            reason = "Parameters must map names to strings"
            return self._dead_letter(rule, target, payload, reason, target.dead_letter_arn)
        job = self.runner.submit(
            queue_arn=target.arn,
            definition=self.job_definitions[target.job_definition or ""],
            job_name=target.job_name or rule.logical_id,
            parameters=params,
            overrides=body.get("ContainerOverrides") or self.container_overrides,
        )
        self.jobs.append(job)
        self._futures.add(self._pool.submit(self.runner.run, job))
        return f"submitted job {job.job_id}"

    def _invoke(self, rule: st.Rule, target: st.Target, payload: str) -> str:
        """Asynchronous invocation: retried, then the function's own dead-letter queue."""
        fn = self.functions[target.resource]
        event = json.loads(payload)
        tries = 1 + self.retries.get(target.resource, DEFAULT_ASYNC_RETRIES)
        record: Invocation | None = None
        for _ in range(tries):
            record = self.lambdas.invoke(fn, event)
            if record.error is None:
                self.on_invoked()
                return f"invoked: {json.dumps(record.result, default=str)}"
        assert record is not None
        # EventBridge delivered; the asynchronous invocation failed: the function's DLQ.
        reason = f"{fn.logical_id} failed {tries} time(s): {record.error!r}"
        return self._dead_letter(rule, target, payload, reason, fn.dead_letter_arn)

    def _dead_letter(
        self, rule: st.Rule, target: st.Target, payload: str, reason: str, arn: str | None
    ) -> str:
        """Park what could not be delivered (or processed) in the queue the template names."""
        self.dead_letters.append((rule.logical_id, target.id, reason))
        if arn and arn.startswith("arn:aws:sqs:"):
            queue_name = arn.rsplit(":", 1)[-1]
            url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=payload)
            return f"dead-lettered to {queue_name}: {reason}"
        return f"dropped: {reason}"
