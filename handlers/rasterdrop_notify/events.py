"""Typed events: Powertools parser models for what EventBridge delivers to the handlers.

- ``BatchJobStateChangeEvent``: "Batch Job State Change" (source ``aws.batch``). Powertools
  ships no model for it, so the detail (a JobDetail, see DescribeJobs) is modelled here with
  just the fields the notifier reads; unknown fields are ignored, as AWS asks.
- ``S3ObjectCreatedEvent``: Powertools' ``S3EventNotificationEventBridgeModel`` keeps the key
  exactly as delivered. We deliberately do NOT use the ``S3EventBridgeNotificationEvent`` data
  class: its ``.key`` runs ``unquote_plus``, which turns a literal ``+`` into a space and then
  names another object.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
)
from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class BatchContainerAttempt(_Lenient):
    containerInstanceArn: str | None = None
    taskArn: str | None = None
    exitCode: int | None = None
    reason: str | None = None
    logStreamName: str | None = None


class BatchAttempt(_Lenient):
    container: BatchContainerAttempt = Field(default_factory=BatchContainerAttempt)
    startedAt: int | None = None  # epoch milliseconds
    stoppedAt: int | None = None
    statusReason: str | None = None


class BatchContainer(_Lenient):
    image: str | None = None
    command: list[str] = Field(default_factory=list)
    exitCode: int | None = None
    reason: str | None = None
    logStreamName: str | None = None


class BatchJobDetail(_Lenient):
    jobArn: str | None = None
    jobName: str
    jobId: str
    jobQueue: str
    status: Literal[
        "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"
    ]
    statusReason: str | None = None
    attempts: list[BatchAttempt] = Field(default_factory=list)
    createdAt: int | None = None
    startedAt: int | None = None
    stoppedAt: int | None = None
    jobDefinition: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    container: BatchContainer | None = None


class BatchJobStateChangeEvent(EventBridgeModel):
    """EventBridge envelope whose ``detail`` is a Batch JobDetail."""

    detail: BatchJobDetail  # type: ignore[assignment]
    detail_type: Literal["Batch Job State Change"] = Field(alias="detail-type")  # type: ignore[assignment]
    source: Literal["aws.batch"]  # type: ignore[assignment]


S3ObjectCreatedEvent = S3EventNotificationEventBridgeModel
