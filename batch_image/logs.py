"""Logging: readable lines on a terminal, one JSON object per line in a container."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

LOG_FORMAT_ENV = "RASTERDROP_LOG_FORMAT"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(fmt: str | None = None, level: int = logging.INFO) -> None:
    """Configure the root logger once; ``fmt`` is ``json`` or ``text`` (env default)."""
    fmt = (fmt or os.environ.get(LOG_FORMAT_ENV) or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # GDAL's own error chatter is reported by us as one categorized line instead.
    logging.getLogger("rasterio").setLevel(logging.WARNING)
    # boto's per-client credential/endpoint chatter is noise in a job's log
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """``logger.info("msg", extra=log_fields(key=value))`` adds fields to JSON lines."""
    return {"fields": fields}
