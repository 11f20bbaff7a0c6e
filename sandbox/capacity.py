"""`python -m sandbox no-capacity`: the path of a job no instance can be found for.

No model is needed: the job never starts. The runner holds it RUNNABLE with Batch's
capacity reason, emits the "Batch Job Queue Blocked" event (the ops alarm's audit queue gets
it), and the template's time limit cancels it; the notifier emails `no_capacity`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from sandbox.batch import NO_CAPACITY
from sandbox.core import Options, Sandbox

KEY = "input/demo/no-capacity.tif"


def run_no_capacity(echo: Callable[[str], None] = print) -> int:
    from batch_image.synthetic.scene import make_sample

    with tempfile.TemporaryDirectory(prefix="rasterdrop-no-capacity-") as tmp:
        scene = Path(make_sample(tmp, width=64, height=64).scene)
        options = Options(context={"notification_emails": ["you@example.com"]})
        with Sandbox(options) as sb:
            sb.runner.hold_runnable = NO_CAPACITY
            sb.upload(scene, KEY)
            sb.run_until_idle()
            blocked = sb.sqs.receive_message(
                QueueUrl=sb.names["BlockedJobsQueue"], MaxNumberOfMessages=10
            ).get("Messages", [])
            for m in blocked:
                detail = json.loads(m["Body"])["detail"]
                echo(f"ops alarm input: job {detail['jobId']} blocked: {detail['statusReason']}")
            for job in sb.jobs:
                echo(f"job {job.job_id}: {job.status} ({job.status_reason})")
            mails = [m for m in sb.messages() if "no-capacity.tif" in m.subject]
            for mail in mails:
                echo(f"\nTo: {', '.join(sb.recipients(mail))}\nSubject: {mail.subject}\n")
                echo(mail.body)
            return 0 if mails and "(no capacity)" in mails[0].subject else 1
