"""``python -m sandbox serve``: the whole flow plus the tenants' API on this machine.

Trains the demo model through the train rule, starts the template's REST API
(``sandbox.api``), issues a token for a demo tenant and prints the two lines a shell can
``export``; then keeps the flow running until Ctrl-C. ``make demo`` uses
``show_client_path`` after the email: the same flow through the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError

Echo = Callable[[str], None]
DEMO_TENANT = "demo-tenant"
DEMO_PLAN = {"rate_per_s": 5, "burst": 10, "uploads_per_day": 50}


def api_context(base: dict[str, Any] | None = None, tenant: str = DEMO_TENANT) -> dict[str, Any]:
    """Context overrides giving the stack a demo tenant (cdk.json's tenants are kept)."""
    from sandbox.core import load_config

    context = dict(base or {})
    tenants = {t: vars(p) for t, p in load_config(context).tenants.items()}
    tenants.setdefault(tenant, dict(DEMO_PLAN))
    for plan in tenants.values():
        plan["emails"] = list(plan.get("emails") or [])
    return {**context, "api": True, "tenants": tenants}


def export_lines(url: str, token: str) -> list[str]:
    return [f"RASTERDROP_API_URL={url}", f"RASTERDROP_TOKEN={token}"]


def run_serve(
    work: Path,
    *,
    size: tuple[int, int],
    trees: int,
    tenant: str = DEMO_TENANT,
    echo: Echo = print,
    context: dict[str, str] | None = None,
) -> int:
    """``context``: stack context overrides (``-c key=value``), as ``cdk synth -c`` takes."""
    from sandbox.api import ApiFrontDoor
    from sandbox.core import Options, Sandbox
    from sandbox.demo import prepare_data, train_model, wait_until_interrupted

    work.mkdir(parents=True, exist_ok=True)
    echo("rasterdrop sandbox: the stack's flow and its API on this machine")
    data = prepare_data(work, None, None, size, echo)
    overrides = {**api_context(tenant=tenant), **(context or {})}
    with Sandbox(Options(context=overrides, work_dir=work)) as sb:
        train_model(sb, data, trees, echo)
        with ApiFrontDoor(sb) as door:
            token = door.issue_token(tenant, "python -m sandbox serve")
            echo(f"  API {door.url} (stage from the template), tenant {tenant}")
            echo(f"  sample scene to submit: {data.scene}")
            echo(f"  access log: {sb.work_dir / 'logs' / 'api-access.log'}")
            echo("")
            for line in export_lines(door.url, token):
                echo(line)
            echo("")
            echo("  then: rasterdrop submit scene.tif --wait --out results/")
            wait_until_interrupted(echo)
    return 0


def show_client_path(
    sb: Any, scene: Path, out: Path, echo: Echo, tenant: str = DEMO_TENANT
) -> None:
    """The same scene through the API: submit → wait → download, with the client library."""
    from rasterdrop_client import Client

    from sandbox.api import ApiFrontDoor

    echo("")
    echo("The client path (rasterdrop-client against the sandbox's API):")
    with ApiFrontDoor(sb) as door:
        token = door.issue_token(tenant, "make demo")
        client = Client(door.url, token)
        t = time.perf_counter()
        sub = client.submit(scene)
        echo(f"  rasterdrop submit {scene.name}: {sub.key}")
        result = sub.wait(timeout=1800, poll=1.0)
        files = result.download(out / "api")
        echo(f"  {result.status} after {time.perf_counter() - t:.1f} s, {sub.polls} status polls")
        for f in files:
            echo(f"  downloaded {f}")
        reference = out / "classes.tif"  # the direct upload's result, copied by the demo
        if reference.exists():
            same = _same_pixels(reference, out / "api" / "classes.tif")
            echo(f"  classes.tif identical to the direct upload's: {'yes' if same else 'NO'}")
        usage = client.usage()
        echo(f"  usage: {usage['uploads']} of {usage['quota']} uploads today")
        if door.pump_errors:
            raise SandboxError(f"the flow failed behind the API: {door.pump_errors[0]}")


def _same_pixels(a: Path, b: Path) -> bool:
    import numpy as np
    import rasterio

    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        return bool(np.array_equal(ra.read(), rb.read()))
