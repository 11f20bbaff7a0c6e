"""The request model API Gateway validates ``POST /v1/uploads`` against (JSON Schema draft 4),
and the gateway responses: every refusal is ``{"code", "message"}`` like the routes' own."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw

MAX_FILENAME_CHARS = 1000

UPLOAD_REQUEST_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="UploadRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["filename", "size_bytes"],
    additional_properties=False,
    properties={
        "filename": apigw.JsonSchema(
            type=apigw.JsonSchemaType.STRING, min_length=1, max_length=MAX_FILENAME_CHARS
        ),
        "size_bytes": apigw.JsonSchema(type=apigw.JsonSchemaType.INTEGER, minimum=1),
    },
)

# (response type, status, code, message) — `$context.error.*` is filled in by API Gateway.
GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str, str, str], ...] = (
    (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized", "missing or unknown token"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "forbidden", "this token may not do that"),
    (apigw.ResponseType.INVALID_API_KEY, "403", "forbidden", "no usage plan for this token"),
    (apigw.ResponseType.THROTTLED, "429", "throttled", "too many requests: retry later"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "quota_exceeded", "daily upload quota reached"),
    (apigw.ResponseType.BAD_REQUEST_BODY, "400", "invalid_request",
     "$context.error.validationErrorString"),
    (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", "invalid_request",
     "$context.error.validationErrorString"),
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", "not_found", "no such route"),
)  # fmt: skip


def response_template(code: str, message: str) -> str:
    return '{"code": "%s", "message": "%s"}' % (code, message)  # noqa: UP031 (a VTL template)
