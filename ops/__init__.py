"""Operator commands for a deployed stack: `doctor` (preflight), `bootstrap-model`, `smoke`.

`python -m ops doctor|bootstrap-model|smoke` (or `make doctor`, `make bootstrap-model`,
`make smoke`) against the account and region boto3 resolves (the same the CDK CLI deploys
to). Each command is one library call taking its clients as arguments, so the tests run the
same code against moto and the sandbox.

cdk.config is read for the stack's configuration, which may load aws_cdk (jsii): its Node
end-of-life banner is silenced here, as in `sandbox`.
"""

from __future__ import annotations

import os

for _name, _value in {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}.items():
    os.environ.setdefault(_name, _value)
