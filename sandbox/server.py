"""The embedded AWS: moto's server in this process, real HTTP on a free local port.

S3, SNS, SQS and Secrets Manager answer at ``endpoint``; the job subprocess and the
in-process handlers reach it through ``AWS_ENDPOINT_URL`` and fake credentials, exactly as
they would reach AWS. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
FAKE_ACCESS_KEY = "sandbox"
FAKE_SECRET_KEY = "sandbox-secret"  # noqa: S105 - moto accepts any credentials
S3_PART_MIN_SIZE = 5 * 1024 * 1024

# Variables that would send boto3 somewhere else, or to real credentials.
_AWS_LEAKS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_BATCH",
)


_running: list[MotoServer] = []


@dataclass
class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port.

    moto keeps its state in process-wide backends, so one server runs per process at a
    time; it starts from, and leaves behind, an empty account.
    """

    region: str = REGION
    part_min_size: int = S3_PART_MIN_SIZE
    endpoint: str = ""
    _server: Any = field(default=None, repr=False)

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        if _running:
            raise RuntimeError(
                "an embedded AWS already runs in this process (moto's state is process-wide)"
            )
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._set_part_min_size(self.part_min_size)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        _running.append(self)
        self.reset()
        return self

    def reset(self) -> None:
        """Empty every service (moto's ``/moto-api/reset``)."""
        url = f"{self.endpoint}/moto-api/reset"  # http://127.0.0.1:<port>: our own server
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - local server
            resp.read()

    def stop(self) -> None:
        if self._server is not None:
            self.reset()
            self._server.stop()
            self._server = None
            self._set_part_min_size(S3_PART_MIN_SIZE)
            _running.remove(self)

    @staticmethod
    def _set_part_min_size(size: int) -> None:
        """S3 refuses parts under 5 MiB but the last; tests may lower it for tiny rasters."""
        import moto.s3.models as s3_models

        s3_models.S3_UPLOAD_PART_MIN_SIZE = size

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ clients
    def env(self) -> dict[str, str]:
        """The variables that point boto3 (in any process) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` at this server."""
        session = boto3.session.Session(
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
            region_name=self.region,
        )
        return session.client(
            service,
            endpoint_url=self.endpoint,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
        )


@contextmanager
def patched_environ(
    values: Mapping[str, str], remove: tuple[str, ...] = _AWS_LEAKS
) -> Iterator[None]:
    """Set ``values`` (and drop variables that would leak to real AWS) for the block."""
    saved = {k: os.environ.get(k) for k in (*values, *remove)}
    try:
        for k in remove:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def leak_free_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without AWS profile/credential/endpoint variables."""
    base = os.environ if base is None else base
    return {
        k: v
        for k, v in base.items()
        if k not in _AWS_LEAKS and not k.startswith(("AWS_", "RASTERDROP_", "POWERTOOLS_"))
    }
