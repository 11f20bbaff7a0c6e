"""Resolve CloudFormation intrinsics in a synthesized template to the sandbox's names.

``Resolver`` knows, for every resource of the template, what ``Ref`` and ``Fn::GetAtt``
return, either because the sandbox created it (the bucket, topics, secrets, the link
function URL: ``bind``) or from the resource type's documented return values with the
sandbox's account and region. ``resolve`` walks any JSON value and replaces ``Ref``,
``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, ``Fn::If`` (with the template's Conditions) and pseudo parameters.
An intrinsic it cannot resolve raises ``TemplateError`` naming it: drift shows up loudly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
_NO_VALUE = object()
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """The template cannot be read the way the sandbox needs (names the resource/field)."""


@dataclass
class Bound:
    """What a resource's Ref and GetAtt attributes resolve to in the sandbox."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Resolver:
    template: dict[str, Any]
    region: str
    account: str
    stack_name: str = "Rasterdrop"
    bound: dict[str, Bound] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, Any]:
        return self.template.get("Resources", {})

    def bind(self, logical_id: str, ref: str, **attrs: str) -> None:
        """Say what the sandbox made for ``logical_id``."""
        if logical_id not in self.resources:
            raise TemplateError(f"no resource {logical_id!r} in the template")
        self.bound[logical_id] = Bound(ref, dict(attrs))

    # ------------------------------------------------------------- references
    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/"
                "00000000-0000-0000-0000-000000000000"
            ),
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.bound:
            return self.bound[name].ref
        params = self.template.get("Parameters", {})
        if name in params:
            if "Default" not in params[name]:
                raise TemplateError(f"template parameter {name!r} has no default")
            return params[name]["Default"]
        if name in self.resources:
            return self._default(name)[0]
        raise TemplateError(f"Ref to unknown name {name!r}")

    def get_att(self, logical_id: str, attr: str) -> str:
        if logical_id in self.bound and attr in self.bound[logical_id].attrs:
            return self.bound[logical_id].attrs[attr]
        if logical_id not in self.resources:
            raise TemplateError(f"Fn::GetAtt on unknown resource {logical_id!r}")
        attrs = self._default(logical_id)[1]
        if attr not in attrs:
            kind = self.resources[logical_id].get("Type")
            raise TemplateError(
                f"Fn::GetAtt {logical_id}.{attr} ({kind}) has no sandbox value; bind it"
            )
        return attrs[attr]

    def _arn(self, service: str, resource: str, *, region: bool = True, acct: bool = True) -> str:
        r = self.region if region else ""
        a = self.account if acct else ""
        return f"arn:{PARTITION}:{service}:{r}:{a}:{resource}"

    def _name(self, logical_id: str, prop: str) -> str:
        value = self.resources[logical_id].get("Properties", {}).get(prop)
        if value is not None:
            resolved = self.resolve(value)
            if isinstance(resolved, str):
                return resolved
        return f"{self.stack_name}-{logical_id}"

    def _default(self, logical_id: str) -> tuple[str, dict[str, str]]:
        """Documented Ref / GetAtt shapes of resource types the stack uses."""
        kind = self.resources[logical_id].get("Type", "")
        if logical_id in self.bound:
            return self.bound[logical_id].ref, self.bound[logical_id].attrs
        if kind == "AWS::S3::Bucket":
            name = self._name(logical_id, "BucketName").lower()
            arn = f"arn:{PARTITION}:s3:::{name}"
            return name, {"Arn": arn, "DomainName": f"{name}.s3.{URL_SUFFIX}"}
        if kind == "AWS::SNS::Topic":
            name = self._name(logical_id, "TopicName")
            arn = self._arn("sns", name)
            return arn, {"TopicArn": arn, "TopicName": name}
        if kind == "AWS::SQS::Queue":
            name = self._name(logical_id, "QueueName")
            url = f"https://sqs.{self.region}.{URL_SUFFIX}/{self.account}/{name}"
            return url, {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": url}
        if kind == "AWS::Lambda::Function":
            name = self._name(logical_id, "FunctionName")
            return name, {"Arn": self._arn("lambda", f"function:{name}")}
        if kind == "AWS::Batch::JobQueue":
            name = self._name(logical_id, "JobQueueName")
            arn = self._arn("batch", f"job-queue/{name}")
            return arn, {"JobQueueArn": arn}
        if kind == "AWS::Batch::JobDefinition":
            name = self._name(logical_id, "JobDefinitionName")
            arn = self._arn("batch", f"job-definition/{name}:1")
            return arn, {"JobDefinitionArn": arn}
        if kind == "AWS::Batch::ComputeEnvironment":
            name = self._name(logical_id, "ComputeEnvironmentName")
            arn = self._arn("batch", f"compute-environment/{name}")
            return arn, {"ComputeEnvironmentArn": arn}
        if kind == "AWS::SecretsManager::Secret":
            name = self._name(logical_id, "Name")
            return self._arn("secretsmanager", f"secret:{name}-AbCdEf"), {}
        if kind == "AWS::IAM::Role":
            name = self._name(logical_id, "RoleName")
            return name, {
                "Arn": self._arn("iam", f"role/{name}", region=False),
                "RoleId": "AROA" + logical_id.upper()[:17],
            }
        if kind == "AWS::KMS::Key":
            digest = hashlib.sha256(logical_id.encode()).hexdigest()
            key_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
            return key_id, {"Arn": self._arn("kms", f"key/{key_id}"), "KeyId": key_id}
        if kind == "AWS::Logs::LogGroup":
            name = self._name(logical_id, "LogGroupName")
            return name, {"Arn": self._arn("logs", f"log-group:{name}:*")}
        if kind == "AWS::Events::Rule":
            name = self._name(logical_id, "Name")
            return name, {"Arn": self._arn("events", f"rule/{name}")}
        if kind == "AWS::Lambda::Url":
            return f"https://{logical_id.lower()}.lambda-url.{self.region}.on.aws/", {}
        return f"{self.stack_name}-{logical_id}", {}

    # ----------------------------------------------------------------- values
    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced (``AWS::NoValue`` entries removed)."""
        out = self._resolve(value)
        return None if out is _NO_VALUE else out

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg)
        items = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Fn::GetAtt":
            if isinstance(arg, str):
                arg = arg.split(".", 1)
            logical_id, attr = self._resolve(arg[0]), self._resolve(arg[1])
            return self.get_att(logical_id, attr)
        if name == "Fn::Join":
            sep, items = arg
            parts = self._resolve(items)
            return self._resolve(sep).join(_text(p, "Fn::Join") for p in parts)
        if name == "Fn::Sub":
            return self._sub(arg)
        if name == "Fn::Select":
            index, items = self._resolve(arg[0]), self._resolve(arg[1])
            return items[int(index)]
        if name == "Fn::Split":
            sep, text = self._resolve(arg[0]), self._resolve(arg[1])
            return text.split(sep)
        if name == "Fn::FindInMap":
            mapping, top, second = (self._resolve(a) for a in arg[:3])
            try:
                return self.template["Mappings"][mapping][top][second]
            except KeyError as exc:
                raise TemplateError(f"Fn::FindInMap {mapping}.{top}.{second} not found") from exc
        if name == "Fn::If":
            cond, yes, no = arg
            return self._resolve(yes if self.condition(cond) else no)
        if name == "Fn::Base64":
            import base64

            return base64.b64encode(_text(self._resolve(arg), name).encode()).decode()
        raise TemplateError(f"intrinsic {name} is not supported by the sandbox")

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return bool(self._cond(conditions[name]))

    def _cond(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Fn::Equals":
                return self._cond(arg[0]) == self._cond(arg[1])
            if key == "Fn::Not":
                return not self._cond(arg[0])
            if key == "Fn::And":
                return all(self._cond(a) for a in arg)
            if key == "Fn::Or":
                return any(self._cond(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        return self._resolve(expr)

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def one(m: re.Match[str]) -> str:
            name = m.group(1).strip()
            if name in variables:
                return _text(variables[name], "Fn::Sub")
            if "." in name:
                logical_id, attr = name.split(".", 1)
                return _text(self.get_att(logical_id, attr), "Fn::Sub")
            return _text(self.ref(name), "Fn::Sub")

        return _SUB_VAR.sub(one, text).replace("${!", "${")


def _text(value: Any, where: str) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise TemplateError(f"{where} needs text, got {value!r}")
