"""rasterdrop's AWS side: one stack composed of one construct per concern.

`cdk.config` turns CDK context into a frozen, validated `RasterdropConfig`;
`cdk.stack.RasterdropStack` composes storage, network, compute, rules,
notifications and monitoring; `cdk.synth.synth_template` synthesizes the
stack in-process (no Docker, no AWS account) for tests and the sandbox.
"""
