"""The template's storage and messaging resources, created on the embedded AWS.

Every bucket (versioned when the template says so), SQS queue, SNS topic (with an SQS
queue subscribed to capture what it publishes) and Secrets Manager secret (its value
generated as ``GenerateSecretString`` describes) of the template, named as the template
names them or ``<stack>-<logical id>``; each is bound in the resolver so references to it
resolve to what was made.
"""

from __future__ import annotations

import json
import secrets as random
import string
from dataclasses import dataclass, field
from typing import Any

from sandbox import stack as st
from sandbox.cfn import Resolver

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


@dataclass
class Provisioned:
    names: dict[str, str] = field(default_factory=dict)  # logical id -> name / URL / ARN
    capture_queues: dict[str, str] = field(default_factory=dict)  # topic logical id -> queue URL


def generate_secret(spec: dict[str, Any]) -> str:
    """A value for ``GenerateSecretString`` as Secrets Manager would make it."""
    alphabet = ""
    if not spec.get("ExcludeUppercase"):
        alphabet += string.ascii_uppercase
    if not spec.get("ExcludeLowercase"):
        alphabet += string.ascii_lowercase
    if not spec.get("ExcludeNumbers"):
        alphabet += string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += PUNCTUATION
    if spec.get("IncludeSpace"):
        alphabet += " "
    alphabet = "".join(c for c in alphabet if c not in spec.get("ExcludeCharacters", ""))
    value = "".join(random.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    key = spec.get("GenerateStringKey")
    if key:
        doc = json.loads(spec.get("SecretStringTemplate") or "{}")
        doc[key] = value
        return json.dumps(doc)
    return value


def _name(template: dict[str, Any], r: Resolver, logical_id: str, prop: str, default: str) -> str:
    props = template["Resources"][logical_id].get("Properties", {})
    given = r.resolve(props.get(prop)) if prop in props else None
    return given if isinstance(given, str) and given else default


def provision(
    template: dict[str, Any],
    r: Resolver,
    *,
    s3: Any,
    sqs: Any,
    sns: Any,
    secrets: Any,
    stack_name: str,
) -> Provisioned:
    made = Provisioned()
    region, account = r.region, r.account
    for logical_id in st.resources_of(template, "AWS::S3::Bucket"):
        default = f"{stack_name.lower()}-{logical_id.lower()}-{account}"[:63]
        name = _name(template, r, logical_id, "BucketName", default)
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        if st.bucket_versioned(template, logical_id):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        r.bind(logical_id, name, Arn=f"arn:aws:s3:::{name}", DomainName=f"{name}.s3.amazonaws.com")
        made.names[logical_id] = name
    for logical_id in st.resources_of(template, "AWS::SQS::Queue"):
        name = _name(template, r, logical_id, "QueueName", f"{stack_name}-{logical_id}")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{region}:{account}:{name}"
        r.bind(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)
        made.names[logical_id] = url
    for logical_id in st.resources_of(template, "AWS::SNS::Topic"):
        name = _name(template, r, logical_id, "TopicName", f"{stack_name}-{logical_id}")
        arn = sns.create_topic(Name=name)["TopicArn"]
        r.bind(logical_id, arn, TopicArn=arn, TopicName=name)
        made.names[logical_id] = arn
        capture = sqs.create_queue(QueueName=f"sandbox-capture-{name}")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=capture_arn)
        made.capture_queues[logical_id] = capture
    for logical_id in st.resources_of(template, "AWS::SecretsManager::Secret"):
        props = template["Resources"][logical_id].get("Properties", {})
        name = _name(template, r, logical_id, "Name", f"{stack_name}-{logical_id}")
        if "SecretString" in props:
            value = r.resolve(props["SecretString"])
        else:
            value = generate_secret(props.get("GenerateSecretString", {}))
        arn = secrets.create_secret(Name=name, SecretString=value)["ARN"]
        r.bind(logical_id, arn)
        made.names[logical_id] = arn
    return made
