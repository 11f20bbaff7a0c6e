"""The sandbox: the stack's event flow run on this machine against moto's server.

Upload → S3 "Object Created" (from the object's HEAD) → every enabled rule of the
synthesized template whose pattern matches → its targets: the input transformer applied,
then a Batch job (the job definition's command as a subprocess, retried per its strategy),
a Lambda handler (in process, environment from the template), an SNS topic or an SQS
queue. Batch emits "Job State Change" events that go through the same rules (the
job-state rule invokes the notify handler); every object the jobs and handlers write comes
back as an event too, as it would from a bucket with EventBridge notifications on. SNS
messages are captured through an SQS queue subscribed to each topic.
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sandbox import stack as st
from sandbox.batch import BatchRunner, Job, job_state_event
from sandbox.cfn import Resolver, TemplateError
from sandbox.dockerfile import read_entrypoint
from sandbox.eventpattern import matches
from sandbox.lambdas import Invocation, LambdaRuntime
from sandbox.linkserver import FunctionUrlServer
from sandbox.provision import provision
from sandbox.s3events import object_created_event
from sandbox.server import ACCOUNT, MotoServer, leak_free_environ
from sandbox.transformer import extract, render

REPO_ROOT = Path(__file__).resolve().parent.parent


class SandboxError(RuntimeError):
    """The sandbox cannot run the flow (a missing part, a template it cannot read)."""


@dataclass
class Delivery:
    """One event handed to one rule target (or matched by no rule)."""

    event_id: str
    summary: str
    rule: str | None
    target: str | None
    kind: str | None
    outcome: str


@dataclass
class Message:
    """One SNS message as a subscriber of its topic receives it."""

    topic: str
    subject: str
    body: str
    attributes: dict[str, str]
    timestamp: datetime
    message_id: str


@dataclass
class Options:
    context: dict[str, Any] = field(default_factory=dict)  # cdk.json context overrides
    work_dir: Path | None = None
    part_min_size: int = 5 * 1024 * 1024
    job_concurrency: int = 2
    template: dict[str, Any] | None = None  # a template synthesized before (tests share one)


def load_config(overrides: dict[str, Any] | None = None, root: Path = REPO_ROOT) -> Any:
    """The stack's typed configuration: cdk.json's context (and overrides) via the app's loader."""
    from cdk.config import load_config as load

    context = json.loads((root / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    return load({**context, **(overrides or {})})


def synthesize(config: Any) -> dict[str, Any]:
    """The stack's CloudFormation template, synthesized in this process."""
    from cdk.synth import synth_template

    # cdk-nag runs in the stack's own tests and `make synth`; the sandbox needs the template.
    return synth_template(config, nag=False)


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


class Sandbox:
    """The stack on this machine. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, options: Options | None = None, root: Path = REPO_ROOT) -> None:
        self.options = options or Options()
        self.root = root
        self.config: Any = None
        self.template: dict[str, Any] = {}
        self.server = MotoServer(part_min_size=self.options.part_min_size)
        self.names: dict[str, str] = {}  # logical id -> created name / ARN / URL
        self.trace: list[Delivery] = []
        self.jobs: list[Job] = []
        self.messages_seen: list[Message] = []
        self.dead_letters: list[tuple[str, str, str]] = []  # (rule, target, reason)
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._futures: set[Future] = set()
        self._seen_versions: set[tuple[str, str, str]] = set()
        self._capture_queues: dict[str, str] = {}  # topic logical id -> queue url
        self._url_servers: list[FunctionUrlServer] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self.faults: dict[int, dict[str, str]] = {}
        self.container_overrides: dict[str, Any] | None = None

    # ------------------------------------------------------------------ setup
    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        self.config = load_config(self.options.context, self.root)
        self.template = self.options.template or synthesize(self.config)
        if self.options.work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rasterdrop-sandbox-")
            self.work_dir = Path(self._tmp.name)
        else:
            self.work_dir = Path(self.options.work_dir)
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        self.region = self.server.region
        self.account = ACCOUNT
        self.resolver = Resolver(
            self.template, self.region, self.account, stack_name=self.config.stack_name
        )
        self.s3 = self.server.client("s3")
        self.sns = self.server.client("sns")
        self.sqs = self.server.client("sqs")
        self.secrets = self.server.client("secretsmanager")
        self._provision()
        r = self.resolver
        self.rules = st.read_rules(self.template, r)
        self.job_definitions = st.read_job_definitions(self.template, r)
        self.functions = st.read_functions(self.template, r)
        self.subscriptions = st.topic_subscriptions(self.template, r)
        watched = st.eventbridge_buckets(self.template)
        if not watched:
            raise SandboxError("no bucket of the template sends its events to EventBridge")
        self.watched_buckets = [self.names[b] for b in watched]
        self.bucket = self._data_bucket(watched)
        self.lambdas = LambdaRuntime(
            self.root / "handlers", self.server.env(), self.work_dir / "logs" / "lambda.log"
        )
        self.runner = BatchRunner(
            entrypoint=read_entrypoint(self.root / "batch_image" / "Dockerfile"),
            workdir=self.root,
            aws_env=self.server.env(),
            base_env=leak_free_environ(),
            log_dir=self.work_dir / "logs",
            scratch_dir=self.work_dir / "scratch",
            region=self.region,
            account=self.account,
            faults=self.faults,
            on_state=self._job_state,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=self.options.job_concurrency, thread_name_prefix="batch"
        )
        self._scan()  # everything present now is history, not news
        self._events = queue.Queue()
        return self

    def stop(self) -> None:
        for server in self._url_servers:
            server.stop()
        self._url_servers.clear()
        runner = getattr(self, "runner", None)
        for proc in list(runner.processes.values()) if runner else []:
            proc.kill()
        if hasattr(self, "_pool"):
            self._pool.shutdown(wait=True, cancel_futures=True)
        if hasattr(self, "lambdas"):
            self.lambdas.close()
        self.server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _data_bucket(self, watched: list[str]) -> str:
        """The bucket the rules listen to (``detail.bucket.name`` of their patterns)."""
        for rule in self.rules:
            names = rule.pattern.get("detail", {}).get("bucket", {}).get("name", [])
            for name in names:
                if isinstance(name, str) and name in self.watched_buckets:
                    return name
        return self.names[watched[0]]

    def _provision(self) -> None:
        made = provision(
            self.template,
            self.resolver,
            s3=self.s3,
            sqs=self.sqs,
            sns=self.sns,
            secrets=self.secrets,
            stack_name=self.config.stack_name,
        )
        self.names.update(made.names)
        self._capture_queues.update(made.capture_queues)
        t, r = self.template, self.resolver
        for url in st.read_function_urls(t):
            server = FunctionUrlServer(self._url_invoker(url.function)).start()
            self._url_servers.append(server)
            r.bind(url.logical_id, server.url, FunctionUrl=server.url, UrlId=url.logical_id)
            self.names[url.logical_id] = server.url

    def _url_invoker(self, function_id: str):
        def invoke(event: dict[str, Any]) -> dict[str, Any] | None:
            record = self.lambdas.invoke(self.functions[function_id], event)
            if record.error is not None:
                return {"statusCode": 502, "body": "Internal Server Error"}
            return record.result

        return invoke

    # ------------------------------------------------------------- user side
    def upload(
        self,
        source: Path | bytes,
        key: str,
        *,
        multipart: bool = False,
        part_size: int | None = None,
    ) -> dict[str, Any]:
        """Put an object into the data bucket (as a user would) and queue its event."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if multipart:
            size = part_size or max(self.options.part_min_size, 1)
            upload = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)
            parts = []
            for n, offset in enumerate(range(0, max(len(data), 1), size), start=1):
                part = self.s3.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                    PartNumber=n,
                    Body=data[offset : offset + size],
                )
                parts.append({"ETag": part["ETag"], "PartNumber": n})
            done = self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
            version = done.get("VersionId")
            reason = "CompleteMultipartUpload"
        else:
            version = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data).get("VersionId")
            reason = "PutObject"
        head = self.s3.head_object(
            Bucket=self.bucket, Key=key, **({"VersionId": version} if version else {})
        )
        event = object_created_event(
            bucket=self.bucket,
            key=key,
            head=head,
            region=self.region,
            account=self.account,
            reason=reason,
        )
        with self._lock:
            self._seen_versions.add((self.bucket, key, head.get("VersionId") or "null"))
        self._events.put(event)
        return event

    def put_event(self, event: dict[str, Any]) -> None:
        """Deliver an event (again): EventBridge delivers at least once."""
        self._events.put(event)

    # ------------------------------------------------- settings of the template
    def job_setting(self, command: str, variable: str) -> str:
        """A variable of the job definition running ``command`` (``predict``, ``train``)."""
        for jd in self.job_definitions.values():
            if jd.command[:1] == (command,) and variable in jd.environment:
                return jd.environment[variable]
        raise SandboxError(f"no {command} job definition of the template sets {variable}")

    def prefix(self, kind: str) -> str:
        """``input``, ``output`` or ``models``: the prefix the predict job is configured with."""
        return self.job_setting("predict", f"RASTERDROP_{kind.upper()}_PREFIX")

    def train_manifest_key(self, name: str) -> str:
        """Where a manifest starts a train job, from the pattern of the rule that does so."""
        for rule in self.rules:
            for t in rule.targets:
                jd = self.job_definitions.get(t.job_definition or "")
                if jd is None or jd.command[:1] != ("train",):
                    continue
                for cond in rule.pattern.get("detail", {}).get("object", {}).get("key", []):
                    if isinstance(cond, dict) and "wildcard" in cond:
                        return cond["wildcard"].replace("*", name, 1)
        raise SandboxError("no rule of the template starts a train job from a key pattern")

    def publish_model(self, model_dir: Path, name: str | None = None, promote: bool = True) -> str:
        """Put a local model directory under ``models/<name>/<version>/`` (+ ``current.json``)."""
        card = json.loads((Path(model_dir) / "model.json").read_text())
        name = name or self.config.model_name
        version = card["version"]
        prefix = f"{self.prefix('models')}{name}/{version}/"
        files = sorted(p for p in Path(model_dir).rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == "model.json")  # its presence means complete
        for path in files:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=prefix + path.relative_to(model_dir).as_posix(),
                Body=path.read_bytes(),
            )
        if promote:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=f"{self.prefix('models')}{name}/current.json",
                Body=json.dumps({"version": version}).encode(),
            )
        return version

    # ------------------------------------------------------------- the flow
    def run_until_idle(self, timeout: float = 600.0) -> None:
        """Deliver events until no event is queued, no job runs and S3 has no news."""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise SandboxError(f"the flow did not settle within {timeout:.0f} s")
            try:
                event = self._events.get(timeout=0.05)
            except queue.Empty:
                self._futures = {f for f in self._futures if not f.done()}
                self._scan()
                if self._events.empty() and not self._futures:
                    self._collect_messages()
                    return
                continue
            self._dispatch(event)
            self._scan()

    def _scan(self) -> None:
        """New object versions in the EventBridge-enabled buckets become events."""
        fresh = []
        for bucket in getattr(self, "watched_buckets", []):
            paginator = self.s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=bucket):
                for v in page.get("Versions", []):
                    ident = (bucket, v["Key"], v.get("VersionId") or "null")
                    with self._lock:
                        if ident in self._seen_versions:
                            continue
                        self._seen_versions.add(ident)
                    fresh.append((v["LastModified"], bucket, v["Key"], v.get("VersionId")))
        for _, bucket, key, version in sorted(fresh, key=lambda f: (f[0], f[2])):
            try:
                head = self.s3.head_object(
                    Bucket=bucket, Key=key, **({"VersionId": version} if version else {})
                )
            except ClientError:  # deleted meanwhile: S3 sent its event anyway; skip it here
                continue
            self._events.put(
                object_created_event(
                    bucket=bucket, key=key, head=head, region=self.region, account=self.account
                )
            )

    def _job_state(self, job: Job) -> None:
        self._events.put(job_state_event(job, region=self.region, account=self.account))

    def _dispatch(self, event: dict[str, Any]) -> None:
        summary = _summary(event)
        matched = False
        for rule in self.rules:
            if not rule.enabled or not matches(rule.pattern, event):
                continue
            matched = True
            for target in rule.targets:
                outcome = self._deliver(rule, target, event)
                self.trace.append(
                    Delivery(
                        event["id"], summary, rule.logical_id, target.resource, target.kind, outcome
                    )
                )
        if not matched:
            self.trace.append(Delivery(event["id"], summary, None, None, None, "no rule matched"))

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
            self.sqs.send_message(QueueUrl=self.names[target.resource], MessageBody=payload)
            return "queued"
        return f"target {target.arn} not modelled by the sandbox"

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

    def _submit(self, rule: st.Rule, target: st.Target, payload: str) -> str:
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as exc:
            return self._dead_letter(
                rule, target, payload, f"input is not JSON ({exc.msg})", target.dead_letter_arn
            )
        params = body.get("Parameters", {}) if isinstance(body, dict) else None
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self._dead_letter(
                rule,
                target,
                payload,
                "Parameters must map names to strings",
                target.dead_letter_arn,
            )
        definition = self.job_definitions[target.job_definition or ""]
        overrides = body.get("ContainerOverrides") or self.container_overrides
        job = self.runner.submit(
            queue_arn=target.arn,
            definition=definition,
            job_name=target.job_name or rule.logical_id,
            parameters=params,
            overrides=overrides,
        )
        self.jobs.append(job)
        self._futures.add(self._pool.submit(self.runner.run, job))
        return f"submitted job {job.job_id}"

    def _invoke(self, rule: st.Rule, target: st.Target, payload: str) -> str:
        fn = self.functions[target.resource]
        event = json.loads(payload)
        tries = 1 + self._async_retries(target.resource)
        record: Invocation | None = None
        for _ in range(tries):
            record = self.lambdas.invoke(fn, event)
            if record.error is None:
                self._collect_messages()
                return f"invoked: {json.dumps(record.result, default=str)}"
        assert record is not None
        # EventBridge delivered; the asynchronous invocation failed: the function's DLQ.
        reason = f"{fn.logical_id} failed {tries} time(s): {record.error!r}"
        return self._dead_letter(rule, target, payload, reason, fn.dead_letter_arn)

    def _async_retries(self, function_id: str) -> int:
        for res in st.resources_of(self.template, "AWS::Lambda::EventInvokeConfig").values():
            props = res.get("Properties", {})
            if st.referenced_id(props.get("FunctionName")) == function_id:
                return int(props.get("MaximumRetryAttempts", 2))
        return 2

    # --------------------------------------------------------------- outputs
    def _collect_messages(self) -> None:
        for topic, url in self._capture_queues.items():
            while True:
                got = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
                if not got:
                    break
                for m in got:
                    envelope = json.loads(m["Body"])
                    self.messages_seen.append(
                        Message(
                            topic=topic,
                            subject=envelope.get("Subject") or "",
                            body=envelope.get("Message", ""),
                            attributes={
                                k: v.get("Value", "")
                                for k, v in (envelope.get("MessageAttributes") or {}).items()
                            },
                            timestamp=_parse_time(envelope.get("Timestamp")),
                            message_id=envelope.get("MessageId", ""),
                        )
                    )
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def messages(self, topic: str | None = None) -> list[Message]:
        """SNS messages published so far (of one topic's logical id, if given)."""
        self._collect_messages()
        return [m for m in self.messages_seen if topic is None or m.topic == topic]

    def recipients(self, message: Message) -> list[str]:
        """Email subscriptions of the message's topic whose filter policy accepts it."""
        out = []
        for sub in self.subscriptions:
            if sub["topic"] != message.topic or sub["protocol"] != "email":
                continue
            policy = sub["filter_policy"]
            if policy and not matches(policy, message.attributes):
                continue
            out.append(str(sub["endpoint"]))
        return out

    def download(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(self.bucket, key, str(dest))
        return dest

    def keys(self, prefix: str) -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [
            o["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        ]


def _summary(event: dict[str, Any]) -> str:
    detail = event.get("detail", {})
    if event.get("source") == "aws.s3":
        return f"s3 {event.get('detail-type')} {detail.get('object', {}).get('key')}"
    if event.get("source") == "aws.batch":
        return f"batch {detail.get('jobName')} {detail.get('status')}"
    return f"{event.get('source')} {event.get('detail-type')}"


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now().astimezone()
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


__all__ = ["Delivery", "Message", "Options", "Sandbox", "SandboxError", "TemplateError"]
