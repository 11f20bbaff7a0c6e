"""Helpers for the Lambda handler tests: event samples, report documents, the moto account."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"
REGION = "eu-west-1"
BUCKET = "rasterdrop-data-123456789012"
LINK_BASE = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/"
SECRET_KEY = "k" * 20 + "-test-signing-key-0123456789"  # ≥ 32 bytes
#: The handlers' "now" in every handler test (the ``now`` fixture freezes runtime's clock):
#: a few minutes after the sample reports' ``created_at``, never today's date.
NOW = datetime(2026, 11, 26, 9, 5, tzinfo=UTC)


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


@dataclass
class Aws:
    s3: Any
    sns: Any
    sqs: Any
    secrets: Any
    topic_arn: str
    queue_url: str
    secret_arn: str

    def messages(self) -> list[dict[str, Any]]:
        """Every SNS envelope delivered to the queue so far (drains it)."""
        out = []
        while True:
            resp = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            batch = resp.get("Messages", [])
            if not batch:
                return out
            for m in batch:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def put_json(self, key: str, doc: dict[str, Any]) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())


class FakeContext:
    function_name = "rasterdrop-notify"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:rasterdrop-notify"
    aws_request_id = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    log_group_name = "/aws/lambda/rasterdrop-notify"
    log_stream_name = "2026/11/26/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def summary_doc(
    key: str = "input/acme/field-7.tif",
    version: str | None = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
    results: str = "output/acme/field-7/",
    model_version: str = "20261126T090000Z",
) -> dict[str, Any]:
    """A summary.json as docs/contracts.md fixes it (S3 mode: outputs are object keys)."""
    return {
        "schema": "rasterdrop.summary/1",
        "status": "succeeded",
        "input": {
            "path": f"s3://{BUCKET}/{key}",
            "bucket": BUCKET,
            "key": key,
            "version_id": version,
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "size_bytes": 48213457,
        },
        "raster": {
            "width": 2048,
            "height": 1536,
            "count": 4,
            "dtype": "uint16",
            "crs": "EPSG:32633",
            "transform": [10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0],
            "pixel_area": 100.0,
            "area_unit": "metre^2",
            "valid_pixels": 3000000,
            "nodata_pixels": 145728,
        },
        "model": {"name": "demo", "version": model_version},
        "classes": [
            {
                "id": 1,
                "name": "water",
                "colour": "#1f78b4",
                "pixels": 375000,
                "share": 0.125,
                "area": 37500000.0,
                "mean_confidence": 0.97,
            },
            {
                "id": 2,
                "name": "forest",
                "colour": "#33a02c",
                "pixels": 1500000,
                "share": 0.5,
                "area": 150000000.0,
                "mean_confidence": 0.91,
            },
            {
                "id": 3,
                "name": "grassland",
                "colour": "#b2df8a",
                "pixels": 600000,
                "share": 0.2,
                "area": 60000000.0,
                "mean_confidence": 0.84,
            },
            {
                "id": 4,
                "name": "cropland",
                "colour": "#ffff99",
                "pixels": 450000,
                "share": 0.15,
                "area": 45000000.0,
                "mean_confidence": 0.8,
            },
            {
                "id": 5,
                "name": "built-up",
                "colour": "#e31a1c",
                "pixels": 75000,
                "share": 0.025,
                "area": 7500000.0,
                "mean_confidence": 0.76,
            },
            {
                "id": 6,
                "name": "bare soil",
                "colour": "#a6761d",
                "pixels": 0,
                "share": 0.0,
                "area": 0.0,
                "mean_confidence": 0.0,
            },
        ],
        "outputs": {
            "classes": results + "classes.tif",
            "confidence": results + "confidence.tif",
            "preview": results + "preview.png",
            "qgis_style": "classes.qml",  # a bare name (local-mode style) is joined to the prefix
        },
        "timings_s": {"validate": 0.4, "predict": 38.2, "finalize": 3.5, "total": 42.1},
        "peak_rss_mb": 612.0,
        "versions": {
            "rasterdrop": "0.1.0",
            "python": "3.11",
            "numpy": "2.4.6",
            "scikit-learn": "1.9.1",
        },
        "created_at": "2026-11-26T09:00:41Z",
    }


def error_doc(
    category: str,
    code: str,
    message: str,
    key: str = "input/acme/field-7.tif",
    version: str | None = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
) -> dict[str, Any]:
    return {
        "schema": "rasterdrop.error/1",
        "status": "failed",
        "category": category,
        "code": code,
        "message": message,
        "details": {},
        "input": {
            "path": f"s3://{BUCKET}/{key}",
            "bucket": BUCKET,
            "key": key,
            "version_id": version,
            "etag": None,
            "size_bytes": 1234,
        },
        "created_at": "2026-11-26T09:00:41Z",
    }
