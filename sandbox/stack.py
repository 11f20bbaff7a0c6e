"""What the sandbox takes from the synthesized template: rules, targets, jobs, functions.

Every setting the sandbox acts on is read here from the CloudFormation template the CDK
app synthesizes, with references resolved to the sandbox's resources (``cfn.Resolver``):
nothing about rules, commands or environments is written a second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sandbox.cfn import Resolver, TemplateError
from sandbox.retry import RetryStrategy


@dataclass(frozen=True)
class Transformer:
    paths: dict[str, str]
    template: str


@dataclass(frozen=True)
class Target:
    """One rule target: where EventBridge sends the (transformed) event."""

    id: str
    kind: str  # batch | lambda | sns | sqs | other
    resource: str  # logical id of the job queue, function, topic or queue
    arn: str
    job_definition: str | None = None  # logical id (batch)
    job_name: str | None = None
    input: str | None = None
    input_path: str | None = None
    transformer: Transformer | None = None
    dead_letter_arn: str | None = None
    max_retry_attempts: int = 185


@dataclass(frozen=True)
class Rule:
    logical_id: str
    pattern: dict[str, Any]
    targets: tuple[Target, ...]
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True)
class JobDefinition:
    logical_id: str
    arn: str
    name: str
    command: tuple[str, ...]
    environment: dict[str, str]
    parameters: dict[str, str]
    retry: RetryStrategy
    timeout_s: int | None
    image: str
    vcpus: str | None = None
    memory_mib: str | None = None
    platform: tuple[str, ...] = ("EC2",)
    propagate_tags: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout_s: int = 3
    memory_mib: int = 128
    runtime: str = ""
    dead_letter_arn: str | None = None  # where failed asynchronous invocations go


@dataclass(frozen=True)
class FunctionUrl:
    logical_id: str
    function: str  # logical id of the target function
    auth_type: str


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """``{logical id: resource}`` of one CloudFormation type."""
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == kind}


def referenced_id(value: Any) -> str | None:
    """The logical id a ``Ref``/``Fn::GetAtt`` points to, if ``value`` is one."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            return arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
    return None


_TARGET_KINDS = {
    "AWS::Batch::JobQueue": "batch",
    "AWS::Lambda::Function": "lambda",
    "AWS::SNS::Topic": "sns",
    "AWS::SQS::Queue": "sqs",
}


def read_rules(template: dict[str, Any], r: Resolver) -> list[Rule]:
    """Every EventBridge rule with an event pattern (scheduled rules are not events)."""
    rules = []
    for logical_id, res in resources_of(template, "AWS::Events::Rule").items():
        props = res.get("Properties", {})
        if "EventPattern" not in props:
            continue
        bus = props.get("EventBusName")
        if bus not in (None, "default"):
            continue  # the sandbox models the default bus, where S3 and Batch publish
        pattern = r.resolve(props["EventPattern"])
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        targets = tuple(_target(t, template, r, logical_id) for t in props.get("Targets", []))
        rules.append(
            Rule(
                logical_id=logical_id,
                pattern=pattern,
                targets=targets,
                enabled=props.get("State", "ENABLED") == "ENABLED",
                description=props.get("Description", ""),
            )
        )
    return rules


def _target(t: dict[str, Any], template: dict[str, Any], r: Resolver, rule: str) -> Target:
    resource = referenced_id(t["Arn"])
    kind = "other"
    if resource and resource in template.get("Resources", {}):
        kind = _TARGET_KINDS.get(template["Resources"][resource]["Type"], "other")
    transformer = None
    if "InputTransformer" in t:
        it = r.resolve(t["InputTransformer"])
        transformer = Transformer(
            paths=dict(it.get("InputPathsMap", {})), template=it["InputTemplate"]
        )
    batch = t.get("BatchParameters", {})
    job_definition = referenced_id(batch.get("JobDefinition")) if batch else None
    if kind == "batch" and not job_definition:
        raise TemplateError(f"{rule}: Batch target without a job definition of this stack")
    dead_letter = t.get("DeadLetterConfig", {}).get("Arn")
    retry = t.get("RetryPolicy", {})
    return Target(
        id=t.get("Id", ""),
        kind=kind,
        resource=resource or "",
        arn=r.resolve(t["Arn"]),
        job_definition=job_definition,
        job_name=r.resolve(batch.get("JobName")) if batch else None,
        input=r.resolve(t.get("Input")),
        input_path=t.get("InputPath"),
        transformer=transformer,
        dead_letter_arn=r.resolve(dead_letter) if dead_letter else None,
        max_retry_attempts=int(retry.get("MaximumRetryAttempts", 185)),
    )


def read_job_definitions(template: dict[str, Any], r: Resolver) -> dict[str, JobDefinition]:
    """Batch job definitions (``ContainerProperties``, or ECS properties' essential container)."""
    out = {}
    for logical_id, res in resources_of(template, "AWS::Batch::JobDefinition").items():
        props = res.get("Properties", {})
        container = props.get("ContainerProperties")
        if container is None and "EcsProperties" in props:
            tasks = props["EcsProperties"].get("TaskProperties", [])
            containers = tasks[0].get("Containers", []) if tasks else []
            essential = [c for c in containers if c.get("Essential", True)]
            container = essential[0] if essential else None
        if container is None:
            raise TemplateError(f"{logical_id}: no container properties the sandbox can run")
        env = {e["Name"]: str(r.resolve(e["Value"])) for e in container.get("Environment", [])}
        requirements = {
            q["Type"]: str(r.resolve(q["Value"])) for q in container.get("ResourceRequirements", [])
        }
        timeout = props.get("Timeout", {}).get("AttemptDurationSeconds")
        out[logical_id] = JobDefinition(
            logical_id=logical_id,
            arn=r.ref(logical_id),
            name=r.ref(logical_id).rsplit("/", 1)[-1].split(":")[0],
            command=tuple(str(c) for c in r.resolve(container.get("Command", []))),
            environment=env,
            parameters={k: str(v) for k, v in (r.resolve(props.get("Parameters")) or {}).items()},
            retry=RetryStrategy.from_template(props.get("RetryStrategy")),
            timeout_s=int(timeout) if timeout else None,
            image=str(r.resolve(container.get("Image", ""))),
            vcpus=requirements.get("VCPU"),
            memory_mib=requirements.get("MEMORY"),
            platform=tuple(props.get("PlatformCapabilities", ["EC2"])),
            propagate_tags=bool(props.get("PropagateTags", False)),
            tags=dict(r.resolve(props.get("Tags")) or {}),
        )
    return out


def read_functions(template: dict[str, Any], r: Resolver) -> dict[str, Function]:
    """Lambda functions with their handler and resolved environment."""
    out = {}
    for logical_id, res in resources_of(template, "AWS::Lambda::Function").items():
        props = res.get("Properties", {})
        variables = props.get("Environment", {}).get("Variables", {})
        name = r.ref(logical_id)
        dead_letter = props.get("DeadLetterConfig", {}).get("TargetArn")
        out[logical_id] = Function(
            logical_id=logical_id,
            name=name,
            arn=r.get_att(logical_id, "Arn"),
            handler=props.get("Handler", ""),
            environment={k: str(r.resolve(v)) for k, v in variables.items()},
            timeout_s=int(props.get("Timeout", 3)),
            memory_mib=int(props.get("MemorySize", 128)),
            runtime=props.get("Runtime", ""),
            dead_letter_arn=r.resolve(dead_letter) if dead_letter else None,
        )
    return out


def read_function_urls(template: dict[str, Any]) -> list[FunctionUrl]:
    urls = []
    for logical_id, res in resources_of(template, "AWS::Lambda::Url").items():
        props = res.get("Properties", {})
        function = referenced_id(props.get("TargetFunctionArn"))
        if not function:
            raise TemplateError(f"{logical_id}: function URL of a function outside the stack")
        urls.append(FunctionUrl(logical_id, function, props.get("AuthType", "AWS_IAM")))
    return urls


def eventbridge_buckets(template: dict[str, Any]) -> list[str]:
    """Buckets that send their events to EventBridge (directly or by CDK's custom resource)."""
    out = []
    for logical_id, res in resources_of(template, "AWS::S3::Bucket").items():
        config = res.get("Properties", {}).get("NotificationConfiguration", {})
        if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled") is True:
            out.append(logical_id)
    for res in resources_of(template, "Custom::S3BucketNotifications").values():
        props = res.get("Properties", {})
        if "EventBridgeConfiguration" in props.get("NotificationConfiguration", {}):
            bucket = referenced_id(props.get("BucketName"))
            if bucket:
                out.append(bucket)
    return out


def bucket_versioned(template: dict[str, Any], logical_id: str) -> bool:
    props = template["Resources"][logical_id].get("Properties", {})
    return props.get("VersioningConfiguration", {}).get("Status") == "Enabled"


def topic_subscriptions(template: dict[str, Any], r: Resolver) -> list[dict[str, Any]]:
    """Email (and other) subscriptions: topic logical id, protocol, endpoint, filter policy."""
    out = []
    for res in resources_of(template, "AWS::SNS::Subscription").values():
        props = res.get("Properties", {})
        policy = props.get("FilterPolicy")
        if isinstance(policy, str):
            policy = json.loads(policy)
        out.append(
            {
                "topic": referenced_id(props.get("TopicArn")),
                "protocol": props.get("Protocol"),
                "endpoint": r.resolve(props.get("Endpoint")),
                "filter_policy": r.resolve(policy) if policy else None,
                "scope": props.get("FilterPolicyScope", "MessageAttributes"),
            }
        )
    return out
