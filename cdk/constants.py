"""Names, logical ids, prefixes and sizes of the stack, in one place.

Everything a test or the sandbox needs to find in the synthesized template
is named here, so a rename is one edit.
"""

from __future__ import annotations

from batch_image.publish import layout as _layout

PROJECT = "rasterdrop"
DEFAULT_STACK_NAME = "Rasterdrop"

# S3 layout (docs/contracts.md): the job's names, so the stack cannot drift from them
# (the handlers' twin, rasterdrop_notify/layout.py, is checked by tests/test_layout_agrees.py).
ASSESSMENTS_PREFIX = _layout.ASSESSMENTS_PREFIX
ERROR_JSON = _layout.ERROR_JSON
INPUT_PREFIX = _layout.INPUT_PREFIX
MODEL_RESERVATION = _layout.MODEL_RESERVATION
MODELS_PREFIX = _layout.MODELS_PREFIX
NOTIFIED_PREFIX = _layout.NOTIFIED_PREFIX
OUTPUT_PREFIX = _layout.OUTPUT_PREFIX
PARTIAL_PREFIX = _layout.PARTIAL_PREFIX
RUNS_SEGMENT = _layout.RUNS_SEGMENT
SUMMARY_JSON = _layout.SUMMARY_JSON
TRAINING_PREFIX = _layout.TRAINING_PREFIX
TIFF_EXTENSIONS = _layout.RASTER_SUFFIXES
VRT_EXTENSIONS = _layout.VRT_SUFFIXES
TRAIN_MANIFEST_NAME = _layout.TRAIN_MANIFEST

# Fixed logical ids (overridden on the L1 resources so the template and the
# nag acknowledgements do not depend on CDK's hashed ids).
ID_DATA_BUCKET = "DataBucket"
ID_ACCESS_LOG_BUCKET = "AccessLogBucket"
ID_TOPIC = "NotificationTopic"
ID_OPS_TOPIC = "OpsTopic"
ID_TOPIC_KEY = "TopicKey"
ID_EVENTS_DLQ = "EventsDeadLetterQueue"
ID_HANDLER_DLQ = "HandlerDeadLetterQueue"
ID_PREDICT_RULE = "PredictRule"
ID_PREDICT_LARGE_RULE = "PredictLargeRule"
ID_PREDICT_VRT_RULE = "PredictVrtRule"
ID_OVERSIZE_RULE = "OversizeRule"
ID_VRT_KEY_CHECK_RULE = "VrtKeyCheckRule"
ID_TRAIN_RULE = "TrainRule"
ID_ASSESS_RULE = "AssessRule"
ID_JOB_STATE_RULE = "JobStateRule"
ID_JOB_FAILED_RULE = "JobFailedRule"
ID_JOB_QUEUE_BLOCKED_RULE = "JobQueueBlockedRule"
ID_BLOCKED_JOBS_QUEUE = "BlockedJobsQueue"
ID_JOB_QUEUE = "JobQueue"
ID_COMPUTE_ENVIRONMENT = "ComputeEnvironment"
ID_PREDICT_JOB = "PredictJobDefinition"
ID_PREDICT_LARGE_JOB = "PredictLargeJobDefinition"
ID_TRAIN_JOB = "TrainJobDefinition"
ID_ASSESS_JOB = "AssessJobDefinition"
ID_PREDICT_ROLE = "PredictJobRole"
ID_TRAIN_ROLE = "TrainJobRole"
ID_ASSESS_ROLE = "AssessJobRole"
ID_NOTIFY_FUNCTION = "NotifyFunction"
ID_REJECT_FUNCTION = "RejectFunction"
ID_LINK_FUNCTION = "LinkFunction"
ID_LINK_SECRET = "LinkSigningSecret"  # noqa: S105 (a logical id, not a secret)
# The ids CDK derived for the link function's siblings while they were children of
# `Notifications` (before the link endpoint became its own construct): pinned so that a
# deploy keeps the role, its policy and the log group instead of replacing them.
ID_LINK_LOGS = "NotificationsLinkLogs210177CF"
ID_LINK_ROLE = "NotificationsLinkRoleA81C1158"
ID_LINK_ROLE_POLICY = "NotificationsLinkRoleDefaultPolicy5BB130CB"

# Lambda handlers (contract: handlers/ is the code asset root).
HANDLERS_DIR = "handlers"
HANDLER_NOTIFY = "notify.handler"
HANDLER_REJECT = "reject.handler"
HANDLER_LINK = "link.handler"
HANDLER_ASSET_EXCLUDES = (
    "tests",
    "tests/**",
    "**/__pycache__",
    "**/__pycache__/**",
    "**/*.pyc",
    ".pytest_cache",
    ".pytest_cache/**",
    ".ruff_cache",
    ".ruff_cache/**",
)
LAMBDA_MEMORY_MIB = 256
LAMBDA_TIMEOUT_SECONDS = 30  # notify/reject: below RASTERDROP_NOTIFY_LEASE_SECONDS (90)
LINK_LAMBDA_TIMEOUT_SECONDS = 10
# Powertools for AWS Lambda (Python) v3 public layer, published by AWS in
# account 017000801446 in every commercial region:
# arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-{arch}:{version}
POWERTOOLS_LAYER_ACCOUNT = "017000801446"  # every commercial region
# Outside the commercial partition the layer is published by other accounts, one per region
# (https://docs.aws.amazon.com/powertools/python/latest/ "AWS China regions", "AWS GovCloud
# regions"); cn-northwest-1 has no published layer.
POWERTOOLS_LAYER_ACCOUNTS_BY_REGION = {
    "cn-north-1": "498634801083",
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
}
POWERTOOLS_LAYER_PYTHON = "python313"
POWERTOOLS_LAYER_ARCH = "x86_64"
POWERTOOLS_SERVICE_NAME = "rasterdrop"
POWERTOOLS_METRICS_NAMESPACE = "Rasterdrop"

# Batch image (contract: batch_image/ is the Docker build context).
BATCH_IMAGE_DIR = "batch_image"
BATCH_IMAGE_EXCLUDES = ("**/__pycache__", "**/*.pyc", "tests", ".pytest_cache")
JOB_PARAMETER_NAMES = ("bucket", "key", "version", "etag", "size")
# every job reads one S3 object version, passed as the job's parameters
_OBJECT_ARGS = ("--bucket", "Ref::bucket", "--key", "Ref::key", "--version-id", "Ref::version")
# a sharded run's parts (batch_image.jobs.shards): the planner submits them with part/shards
PREDICT_COMMAND = (
    "predict",
    *_OBJECT_ARGS,
    "--etag",
    "Ref::etag",
    "--size",
    "Ref::size",
    "--part",
    "Ref::part",
    "--shards",
    "Ref::shards",
)
PREDICT_PART_DEFAULTS = {"part": "", "shards": ""}  # the rule's job: no part
TRAIN_COMMAND = ("train", *_OBJECT_ARGS)
ASSESS_COMMAND = ("assess", *_OBJECT_ARGS)
ASSESSMENT_SEGMENT = _layout.ASSESSMENT_SEGMENT
SAMPLE_SUFFIX = _layout.SAMPLE_SUFFIX
JOB_NAME_ASSESS = "rasterdrop-assess"
JOB_NAME_PREDICT = "rasterdrop-predict"
JOB_NAME_PREDICT_LARGE = "rasterdrop-predict-large"
JOB_NAME_TRAIN = "rasterdrop-train"
# physical names of the predict job definitions (`<stack>-<suffix>`): a sharded run's
# planner submits its parts by name, and the job role may submit to these only
JOB_DEFINITION_PREDICT_SUFFIX = "predict"
JOB_DEFINITION_PREDICT_LARGE_SUFFIX = "predict-large"
EXIT_INVALID_INPUT = 2
EXIT_MODEL_ERROR = 3
EXIT_SUPERSEDED = 4  # batch_image.errors: final, no email
EXIT_IN_PROGRESS = 5  # batch_image.errors: final, no email
EXIT_NOTHING_TO_REPORT = (EXIT_SUPERSEDED, EXIT_IN_PROGRESS)  # not counted as failed jobs
JOB_LOG_STREAM_PREFIX = "rasterdrop"
BATCH_REASON_OOM = "OutOfMemoryError*"

# EventBridge numeric matching only handles -5e9..5e9 (event-ruler ComparableNumber):
# rule bounds must lie inside, and larger event values match no numeric condition.
EVENTBRIDGE_NUMERIC_MAX = 5_000_000_000

# EventBridge delivery: retries and the age after which an event goes to the DLQ.
EVENT_RETRY_ATTEMPTS = 8
EVENT_MAX_AGE_HOURS = 6
DLQ_RETENTION_DAYS = 14
LAMBDA_ASYNC_RETRY_ATTEMPTS = 2

# Monitoring.
ALARM_PERIOD_MINUTES = 5
FAILED_JOBS_PERIOD_MINUTES = 60

# Lifecycle constants that are not worth a knob.
ABORT_MULTIPART_DAYS = 1
NONCURRENT_VERSION_DAYS = 30

# VPC (no NAT: public subnets, S3 gateway endpoint, no inbound rules).
VPC_CIDR = "10.42.0.0/16"
VPC_MAX_AZS = 2
VPC_SUBNET_MASK = 20
