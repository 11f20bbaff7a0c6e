"""``POST /v1/uploads {filename, size_bytes}`` → a presigned POST into ``input/<tenant>/``.

The key is ``<input prefix><tenant>/<filename>``; the tenant is the authorizer's. Refused
before any URL is issued, with the job's own code and message (``rasterdrop_notify.paths.
check_key``, the job's key rule: one rule, one author): ``..``/``.``/empty segments,
control characters, not ``.tif``/``.tiff``/``.vrt``, over 1024 bytes; then what one API
upload cannot carry (``_check_uploadable``): a double quote, and a VRT (no band files).
A declared size above the stack's cap is refused here too (413, ``too_large``); the
presigned policy repeats the cap as ``content-length-range``, so S3 itself refuses a bigger
body whatever was declared, and
the job refuses it again should one ever arrive (the oversize rule and the job's HEAD).

One POST carries up to 5 GB (S3's limit for browser-based uploads), above the stack's cap
(at most 5e9 bytes, cdk/config.py): no multipart variant is needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rasterdrop_api import responses
from rasterdrop_api.request import BadRequest
from rasterdrop_api.settings import ApiSettings
from rasterdrop_notify.key_transport import untransportable
from rasterdrop_notify.layout import BANDS_FOLDER_SUFFIX, VRT_SUFFIXES
from rasterdrop_notify.paths import KeyRefused, check_key

TENANT_METADATA = "x-amz-meta-rasterdrop-tenant"
UNSUPPORTED = "unsupported_name"
VRT_REFUSED = "vrt_not_uploadable"


def upload_key(tenant: str, filename: str, input_prefix: str) -> str:
    """The key a tenant's file lands at; KeyRefused (the job's message) when refused."""
    if not isinstance(filename, str) or not filename:
        raise KeyRefused(f"{input_prefix}{tenant}/", "is empty")
    if "\\" in filename:
        raise KeyRefused(f"{input_prefix}{tenant}/{filename}", "contains a backslash")
    key = f"{input_prefix}{tenant}/{filename}"
    check_key(key, input_prefix)
    _check_uploadable(key)
    return key


def _check_uploadable(key: str) -> None:
    """What the job would take from the bucket but not from one API upload: a name the upload
    event cannot carry (the reject handler's rule, ``key_transport``), and a VRT, whose band
    files must sit beside it in ``<name>.bands/`` (keys the API never presigns)."""
    unsafe = untransportable(key)  # a double quote: the rest was refused above
    if unsafe:
        raise KeyRefused(key, f"contains {' and '.join(unsafe)}: rename the file", UNSUPPORTED)
    if key.lower().endswith(VRT_SUFFIXES):
        raise KeyRefused(
            key,
            f"is a VRT, whose band files sit beside it in <name>{BANDS_FOLDER_SUFFIX}/, which "
            "the API does not upload: stack the bands into one GeoTIFF (gdal_translate "
            "scene.vrt scene.tif) and submit that, or copy the VRT and its band folder into "
            "the bucket's input/ prefix",
            VRT_REFUSED,
        )


def declared_size(body: dict[str, Any]) -> int:
    size = body.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadRequest("size_bytes must be a positive integer")
    return size


def presign(
    body: dict[str, Any], tenant: str, s3: Any, settings: ApiSettings, now: datetime
) -> dict[str, Any]:
    """The route's answer: 201 with the POST form, 400/413 refusals."""
    base = settings.base
    try:
        key = upload_key(tenant, body.get("filename"), base.input_prefix)  # type: ignore[arg-type]
        size = declared_size(body)
    except KeyRefused as exc:
        return responses.error(400, exc.code, str(exc))
    except BadRequest as exc:
        return responses.error(400, exc.code, str(exc))
    limit = settings.max_upload_bytes
    if size > limit:
        return responses.error(
            413, "too_large", f"{body['filename']} is {size:,} bytes; the limit is {limit:,} bytes"
        )
    post = s3.generate_presigned_post(
        Bucket=base.bucket,
        Key=key,
        Fields={TENANT_METADATA: tenant},
        Conditions=[{TENANT_METADATA: tenant}, ["content-length-range", 1, limit]],
        ExpiresIn=settings.upload_url_seconds,
    )
    expires = now + timedelta(seconds=settings.upload_url_seconds)
    return responses.ok(
        {
            "key": key,
            "upload": {"url": post["url"], "fields": post["fields"], "method": "POST"},
            "max_bytes": limit,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        201,
    )
