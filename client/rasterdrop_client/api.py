"""The Python API: ``Client(url, token).submit(path).wait().download(dir)``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rasterdrop_client import transport
from rasterdrop_client.errors import ClientError, Failed, InvalidInput, TimedOut

FINAL = ("succeeded", "failed", "rejected")
Progress = Callable[[int], None]


@dataclass
class Result:
    """A status document of ``GET /v1/results`` (``doc``) and what it offers."""

    client: Client
    doc: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.doc.get("status", ""))

    @property
    def key(self) -> str:
        return str(self.doc.get("key", ""))

    def raise_for_status(self) -> Result:
        """Failed / InvalidInput unless succeeded (pending and running pass)."""
        error = self.doc.get("error") or {}
        if self.status == "rejected":
            raise InvalidInput(f"{self.doc.get('file')}: rejected: {error.get('message')}",
                               code=str(error.get("code", "")))  # fmt: skip
        if self.status == "failed":
            raise Failed(
                f"{self.doc.get('file')}: failed ({error.get('category')}): {error.get('message')}",
                category=str(error.get("category", "")),
                code=str(error.get("code", "")),
            )
        return self

    def download(self, directory: str | Path) -> list[Path]:
        """The result files (fresh links) and summary.json into ``directory``."""
        self.raise_for_status()
        if self.status != "succeeded":
            raise ClientError(f"{self.key} is {self.status}: nothing to download yet")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        outputs = (self.doc.get("summary") or {}).get("outputs") or {}
        files = []
        for name, url in (self.doc.get("links") or {}).items():
            filename = Path(str(outputs.get(name) or name)).name
            files.append(transport.download(url, out / filename))
        summary = out / "summary.json"
        summary.write_text(json.dumps(self.doc.get("summary"), indent=2), encoding="utf-8")
        return [*files, summary]


@dataclass
class Submission:
    client: Client
    key: str
    path: Path | None = None
    polls: int = field(default=0)

    def status(self) -> Result:
        return self.client.status(self.key)

    def wait(self, timeout: float = 3600.0, poll: float = 2.0, *, final: bool = True) -> Result:
        """Poll until the upload is done (succeeded, failed, rejected); raise if not
        succeeded (``final=True``) or return the last status."""
        deadline = self.client.monotonic() + timeout
        interval = poll
        while True:
            result = self.status()
            self.polls += 1
            if result.status in FINAL:
                return result.raise_for_status() if final else result
            if self.client.monotonic() + interval > deadline:
                raise TimedOut(f"{self.key} still {result.status} after {timeout:.0f} s")
            self.client.sleep(interval)
            interval = min(interval * 1.5, 30.0)


class Client:
    """A tenant's view of a rasterdrop API (``RASTERDROP_API_URL``, ``RASTERDROP_TOKEN``)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        retry: transport.Retry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url:
            raise ClientError("no API URL (set RASTERDROP_API_URL)")
        self.http = transport.Transport(url, token, retry=retry or transport.Retry(sleep=sleep))
        self.sleep, self.monotonic = sleep, monotonic

    def request_upload(self, filename: str, size_bytes: int) -> dict[str, Any]:
        return self.http.call(
            "POST", "v1/uploads", {"filename": filename, "size_bytes": size_bytes}
        )

    def submit(
        self, path: str | Path, *, name: str | None = None, progress: Progress | None = None
    ) -> Submission:
        """Ask for an upload form (the API refuses bad names and sizes), then POST the file."""
        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        grant = self.request_upload(name or path.name, path.stat().st_size)
        upload = grant["upload"]
        transport.post_form(upload["url"], upload["fields"], path, progress=progress)
        return Submission(self, grant["key"], path)

    def status(self, key: str) -> Result:
        return Result(self, self.http.call("GET", f"v1/results?key={quote(key, safe='')}"))

    def usage(self) -> dict[str, Any]:
        return self.http.call("GET", "v1/usage")
