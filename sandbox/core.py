"""The sandbox: the stack's event flow run on this machine against moto's server.

`Sandbox` is the facade: it synthesizes (or takes) the template, starts moto's server,
provisions the template's buckets, queues, topics and secrets, and offers what a user
does (upload, publish a model) and sees (SNS messages, objects). The flow itself is
`sandbox.bus.EventBus` (rules → targets: Batch jobs as subprocesses, Lambda handlers in
process, SNS, SQS; retries and dead letters; job-state events), fed by
`sandbox.s3events.S3EventTap` (every object the jobs, the handlers and the user write
comes back as an "Object Created" event as S3 writes it, as from a bucket with EventBridge
notifications on; nothing is listed or polled). SNS
messages are captured through an SQS queue subscribed to each topic.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox import stack as st
from sandbox.arrays import BatchApiServer
from sandbox.batch import BatchRunner, Job, queue_time_limits
from sandbox.bus import Delivery, EventBus, async_retries
from sandbox.cfn import Resolver
from sandbox.dockerfile import read_entrypoint
from sandbox.errors import SandboxError
from sandbox.eventpattern import matches
from sandbox.lambdas import LambdaRuntime
from sandbox.linkserver import FunctionUrlServer
from sandbox.provision import provision
from sandbox.s3events import S3EventTap
from sandbox.server import ACCOUNT, MotoServer, leak_free_environ

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    # Jobs and handlers reach AWS through a misbehaving proxy (sandbox.faults.proxy); the
    # sandbox's own clients (uploads, checks) go straight to the server. Armed by the caller.
    fault_plan: Any | None = None


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


class Sandbox:
    """The stack on this machine. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, options: Options | None = None, root: Path = REPO_ROOT) -> None:
        self.options = options or Options()
        self.root = root
        self.config: Any = None
        self.template: dict[str, Any] = {}
        self.server = MotoServer(part_min_size=self.options.part_min_size)
        self.names: dict[str, str] = {}  # logical id -> created name / ARN / URL
        self.messages_seen: list[Message] = []
        # Fault injection for tests: extra job variables per attempt number (see BatchRunner).
        self.faults: dict[int, dict[str, str]] = {}
        self._bus: EventBus | None = None
        self._capture_queues: dict[str, str] = {}  # topic logical id -> queue url
        self._url_servers: list[FunctionUrlServer] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # ------------------------------------------------------------------ setup
    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        """Template, embedded AWS with the template's resources, then the event bus."""
        self.config = load_config(self.options.context, self.root)
        self.template = self.options.template or synthesize(self.config)
        self.work_dir = self._work_dir()
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
        self._read_template()
        self.proxy = self._fault_proxy()
        # SubmitJob of the jobs themselves (a sharded run's parts): sandbox.arrays
        self.batch_api = BatchApiServer(lambda request: self.bus.scheduler.submit(request))
        self.batch_api.start()
        self.lambdas = LambdaRuntime(
            self.root / "handlers", self.aws_env(), self.work_dir / "logs" / "lambda.log"
        )
        self.runner = self._batch_runner()
        self._bus = EventBus(
            rules=self.rules,
            job_definitions=self.job_definitions,
            functions=self.functions,
            retries=async_retries(self.template),
            runner=self.runner,
            lambdas=self.lambdas,
            sns=self.sns,
            sqs=self.sqs,
            queue_urls=self.names,
            job_concurrency=self.options.job_concurrency,
            on_invoked=self._collect_messages,
        )
        self.runner.time_limits = queue_time_limits(self.template, self.resolver.resolve)
        self.runner.on_event = self._bus.put
        self.tap = S3EventTap(
            self.watched_buckets, region=self.region, account=self.account, deliver=self._bus.put
        ).install()  # from here on, every object created is news
        return self

    def stop(self) -> None:
        if hasattr(self, "tap"):
            self.tap.uninstall()
        for server in self._url_servers:
            server.stop()
        self._url_servers.clear()
        if self._bus is not None:
            self._bus.close()
        if hasattr(self, "lambdas"):
            self.lambdas.close()
        if getattr(self, "proxy", None) is not None:
            self.proxy.stop()
        if getattr(self, "batch_api", None) is not None:
            self.batch_api.stop()
        self.server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _fault_proxy(self) -> Any:
        if self.options.fault_plan is None:
            return None
        from sandbox.faults.proxy import FaultProxy

        return FaultProxy(self.server.endpoint, self.options.fault_plan).start()

    def aws_env(self) -> dict[str, str]:
        """What points the jobs and handlers at AWS: the server, or the fault proxy."""
        env = self.server.env()
        if getattr(self, "proxy", None) is not None:
            env["AWS_ENDPOINT_URL"] = self.proxy.url
        if getattr(self, "batch_api", None) is not None:
            env["AWS_ENDPOINT_URL_BATCH"] = self.batch_api.endpoint
        return env

    def _work_dir(self) -> Path:
        if self.options.work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rasterdrop-sandbox-")
            return Path(self._tmp.name)
        work = Path(self.options.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        return work

    def _read_template(self) -> None:
        """Rules, job definitions, functions, subscriptions and the watched buckets."""
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

    def _batch_runner(self) -> BatchRunner:
        return BatchRunner(
            entrypoint=read_entrypoint(self.root / "batch_image" / "Dockerfile"),
            workdir=self.root,
            aws_env=self.aws_env(),
            base_env=leak_free_environ(),
            log_dir=self.work_dir / "logs",
            scratch_dir=self.work_dir / "scratch",
            region=self.region,
            account=self.account,
            faults=self.faults,
        )

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
        for url in st.read_function_urls(self.template):
            server = FunctionUrlServer(self._url_invoker(url.function)).start()
            self._url_servers.append(server)
            self.resolver.bind(
                url.logical_id, server.url, FunctionUrl=server.url, UrlId=url.logical_id
            )
            self.names[url.logical_id] = server.url

    def _url_invoker(self, function_id: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        def invoke(event: dict[str, Any]) -> dict[str, Any] | None:
            record = self.lambdas.invoke(self.functions[function_id], event)
            if record.error is not None:
                return {"statusCode": 502, "body": "Internal Server Error"}
            return record.result

        return invoke

    # ---------------------------------------------------------- the event bus
    @property
    def bus(self) -> EventBus:
        """The flow (rules, targets, retries, dead letters); there once `start()` ran."""
        if self._bus is None:
            raise SandboxError("the sandbox is not started")
        return self._bus

    @property
    def trace(self) -> list[Delivery]:
        return self.bus.trace

    @property
    def jobs(self) -> list[Job]:
        return self.bus.jobs

    @property
    def dead_letters(self) -> list[tuple[str, str, str]]:
        return self.bus.dead_letters

    @property
    def container_overrides(self) -> dict[str, Any] | None:
        """ContainerOverrides for jobs whose rule input (or SubmitJob) has none (tests lower
        limits)."""
        return self.bus.container_overrides

    @container_overrides.setter
    def container_overrides(self, value: dict[str, Any] | None) -> None:
        self.bus.container_overrides = value

    def run_until_idle(self, timeout: float = 600.0) -> None:
        """Deliver events until no event is queued, no job runs and S3 has no news."""
        self.bus.run_until_idle(timeout)
        self._collect_messages()

    # ------------------------------------------------------------- user side
    def upload(
        self,
        source: Path | bytes,
        key: str,
        *,
        multipart: bool = False,
        part_size: int | None = None,
    ) -> dict[str, Any]:
        """Put an object into the data bucket (as a user would); S3 sends its event."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if multipart:
            version = self._put_multipart(data, key, part_size or self.options.part_min_size)
        else:
            version = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data).get("VersionId")
        event = self.tap.event_for(self.bucket, key, version)
        if event is None:
            raise SandboxError(f"S3 sent no event for s3://{self.bucket}/{key}")
        return event

    def _put_multipart(self, data: bytes, key: str, part_size: int) -> str | None:
        """CreateMultipartUpload, UploadPart per `part_size` bytes, Complete: the version."""
        size = max(part_size, 1)
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
        return done.get("VersionId")

    def put_event(self, event: dict[str, Any]) -> None:
        """Deliver an event (again): EventBridge delivers at least once."""
        self.bus.put(event)

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
        """Put a local model directory under ``models/<name>/<version>/`` (+ ``current.json``)
        the way ``make bootstrap-model`` does (``ops.bootstrap``: the train job's model store)."""
        from ops.bootstrap import publish_model

        name = name or self.config.model_name
        return publish_model(self.s3, self.bucket, Path(model_dir), name, promote=promote).version

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


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now().astimezone()
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
