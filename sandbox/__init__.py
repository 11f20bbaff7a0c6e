"""The stack's flow on this machine (``python -m sandbox``), no AWS account needed.

The sandbox synthesizes the stack in process, so it loads aws_cdk and with it
jsii, whose Node runtime prints a large end-of-life banner on stderr for this
machine's Node 20 (jsii still runs on it; `make synth` and the tests use it).
The banner would bury the sandbox's own output, so it is silenced here: this
module runs before anything of the sandbox imports aws_cdk, whichever way the
sandbox is entered. Values already set in the environment win.
"""

from __future__ import annotations

import os

JSII_QUIET = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}
for _name, _value in JSII_QUIET.items():
    os.environ.setdefault(_name, _value)
