"""AWS Batch: an EC2 compute environment, a job queue, job definitions and job roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk import constants as C
from cdk.assessment import assess_role
from cdk.naming import fix_logical_id, list_prefix_conditions, object_arns

# The instance's root volume holds the OS, the image and every running job's scratch
# (Docker's storage is on the root volume of the ECS-optimized Amazon Linux 2023 AMI).
BASE_VOLUME_GIB = 30  # the ECS AL2023 AMI's own 30 GiB root (OS, Docker, our ~1 GB image)
MAX_GP3_GIB = 16_384  # gp3 volume size limit
GIB = 1024**3

# Batch cancels a job left RUNNABLE this long for one of these reasons and marks it FAILED
# with "Canceled by JobStateTimeLimit action due to reason: <reason>"; the notifier emails
# it as `no_capacity`. These are the reasons that support the action; the others
# (MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS, ACTION_REQUIRED, UNDETERMINED) "require manual
# investigation": the blocked-queue alarm (cdk/monitoring.py) reports them to ops.
# https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html
RUNNABLE_TIME_LIMIT_REASONS = (
    batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
    batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
    batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
)


def root_volume_gib(
    *, max_vcpus: int, smallest_job_vcpus: int, max_input_bytes: int, max_pixels: int
) -> int:
    """Root volume size: the AMI's base plus worst-case scratch for every job one instance
    can hold at once.

    Rule: jobs per instance = max_vcpus // smallest job's vCPUs (Batch never places more
    vCPUs on an instance than the environment's maxvCpus allows); each job may hold its
    input (up to `max_input_bytes`) and its two uint8 outputs uncompressed (2 bytes per
    pixel, up to `max_pixels`). Defaults: 64 // 4 = 16 jobs x (4 GiB + 3.7 GiB) + 30 GiB =
    158 GiB of gp3 (about $0.017 an hour per running instance, nothing when idle).
    """
    jobs = max(1, max_vcpus // max(1, smallest_job_vcpus))
    per_job = -(-(max_input_bytes + 2 * max_pixels) // GIB)
    return min(MAX_GP3_GIB, BASE_VOLUME_GIB + jobs * per_job)


def runnable_time_limits(minutes: int) -> list[batch.JobStateTimeLimitAction]:
    """CANCEL after `minutes` RUNNABLE for each capacity/misconfiguration reason."""
    return [
        batch.JobStateTimeLimitAction(
            action=batch.JobStateTimeLimitActionsAction.CANCEL,
            max_time=Duration.minutes(minutes),
            reason=reason,
            state=batch.JobStateTimeLimitActionsState.RUNNABLE,
        )
        for reason in RUNNABLE_TIME_LIMIT_REASONS
    ]


def instance_class(family: str) -> ec2.InstanceClass:
    """`c6i` -> ec2.InstanceClass.C6I (a whole family: Batch picks the size)."""
    return getattr(ec2.InstanceClass, family.upper())


@dataclass(frozen=True)
class JobSize:
    vcpus: int
    memory_mib: int
    timeout_minutes: int


def retry_strategies() -> list[batch.RetryStrategy]:
    """Exit codes 2/3/4/5 and out-of-memory never retry; everything else does.

    2 bad input, 3 model/configuration (or a scratch volume too small for the input),
    4 superseded (a newer version of the input exists), 5 in progress (another live job
    holds the run's lease): retrying cannot change any of them, and 4/5 end a run that
    sends no email (the newer version's job, or the lease holder's, reports). Batch
    evaluates these in order (at most five); a failure matching none of them (a spot
    reclaim "Host EC2 ... terminated", CannotPullContainerError, exit 1 or a signal) is
    retried until the job definition's attempts are used up (Batch's default, API
    reference "EvaluateOnExit"), so spot and pull errors need no entry of their own.
    """
    return [
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_exit_code=str(code)))
        for code in (
            C.EXIT_INVALID_INPUT,
            C.EXIT_MODEL_ERROR,
            C.EXIT_SUPERSEDED,
            C.EXIT_IN_PROGRESS,
        )
    ] + [
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason=C.BATCH_REASON_OOM))
    ]


def job_environment(
    *, bucket_name: str, model_name: str, max_input_bytes: int, max_pixels: int, attempts: int
) -> dict[str, str]:
    """Container environment per docs/contracts.md."""
    return {
        "RASTERDROP_MODEL_URI": f"s3://{bucket_name}/{C.MODELS_PREFIX}{model_name}/",
        "RASTERDROP_INPUT_PREFIX": C.INPUT_PREFIX,
        "RASTERDROP_OUTPUT_PREFIX": C.OUTPUT_PREFIX,
        "RASTERDROP_PARTIAL_PREFIX": C.PARTIAL_PREFIX,
        "RASTERDROP_MODELS_PREFIX": C.MODELS_PREFIX,
        "RASTERDROP_TRAINING_PREFIX": C.TRAINING_PREFIX,
        "RASTERDROP_MAX_INPUT_BYTES": str(max_input_bytes),
        "RASTERDROP_MAX_PIXELS": str(max_pixels),
        "RASTERDROP_LOG_FORMAT": "json",
        # internal errors write error.json only on the last attempt
        "RASTERDROP_MAX_ATTEMPTS": str(attempts),
        "AWS_DEFAULT_REGION": Aws.REGION,
    }


def shard_submission(*, queue_arn: str, definition_names: Sequence[str]) -> iam.PolicyStatement:
    """``batch:SubmitJob`` on the job's own queue and predict job definitions (any
    revision), nothing else: a sharded run's planner submits its children and its
    assemble job there, with the parameters it was given (batch_image.jobs.shards)."""
    base = f"arn:{Aws.PARTITION}:batch:{Aws.REGION}:{Aws.ACCOUNT_ID}:job-definition/"
    definitions = [arn for name in definition_names for arn in (base + name, f"{base}{name}:*")]
    return iam.PolicyStatement(
        sid="SubmitOwnShards",
        actions=["batch:SubmitJob"],
        resources=[queue_arn, *definitions],
    )


def predict_role(scope: Construct, id: str, *, bucket: s3.IBucket) -> iam.Role:
    """Read input/ and models/; write output/ and partial/; delete partial/ and stale reports.

    It also reads its own output/ and partial/ (duplicate check, lease, resume).
    """
    role = iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description="rasterdrop predict job: input/ and models/ read, output/ and partial/ write",
    )
    arn = bucket.bucket_arn
    statements = [
        iam.PolicyStatement(
            sid="ReadInputsModelsAndOwnResults",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=object_arns(
                arn, C.INPUT_PREFIX, C.MODELS_PREFIX, C.OUTPUT_PREFIX, C.PARTIAL_PREFIX
            ),
        ),
        iam.PolicyStatement(
            sid="WriteResultsAndCheckpoints",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=object_arns(arn, C.OUTPUT_PREFIX, C.PARTIAL_PREFIX),
        ),
        iam.PolicyStatement(
            # checkpoints and the lease; and the report of an earlier input version
            # (a failure removes its summary.json, a success its error.json)
            sid="DeleteCheckpointsAndStaleReports",
            actions=["s3:DeleteObject"],
            resources=[
                *object_arns(arn, C.PARTIAL_PREFIX),
                f"{arn}/{C.OUTPUT_PREFIX}*/{C.SUMMARY_JSON}",
                f"{arn}/{C.OUTPUT_PREFIX}*/{C.ERROR_JSON}",
            ],
        ),
        iam.PolicyStatement(
            sid="ListOwnPrefixes",
            actions=["s3:ListBucket"],
            resources=[arn],
            conditions=list_prefix_conditions(
                C.INPUT_PREFIX, C.MODELS_PREFIX, C.OUTPUT_PREFIX, C.PARTIAL_PREFIX
            ),
        ),
    ]
    for statement in statements:
        role.add_to_policy(statement)
    return role


def train_role(scope: Construct, id: str, *, bucket: s3.IBucket) -> iam.Role:
    """Read training/, input/ and models/; write models/."""
    role = iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description="rasterdrop train job: training/ input/ models/ read, models/ write",
    )
    arn = bucket.bucket_arn
    for statement in (
        iam.PolicyStatement(
            sid="ReadTrainingData",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=object_arns(arn, C.TRAINING_PREFIX, C.INPUT_PREFIX, C.MODELS_PREFIX),
        ),
        iam.PolicyStatement(
            sid="WriteModels",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=object_arns(arn, C.MODELS_PREFIX),
        ),
        iam.PolicyStatement(
            # the version reservation once the model is published, and the other one of
            # a run report's summary.json / error.json
            sid="DeleteReservationsAndStaleRunReports",
            actions=["s3:DeleteObject"],
            resources=[
                f"{arn}/{C.MODELS_PREFIX}*/{C.MODEL_RESERVATION}",
                f"{arn}/{C.MODELS_PREFIX}*/{C.RUNS_SEGMENT}*",
            ],
        ),
        iam.PolicyStatement(
            sid="ListOwnPrefixes",
            actions=["s3:ListBucket"],
            resources=[arn],
            conditions=list_prefix_conditions(C.TRAINING_PREFIX, C.INPUT_PREFIX, C.MODELS_PREFIX),
        ),
    ):
        role.add_to_policy(statement)
    return role


class Compute(Construct):
    """Compute environment (spot or on-demand), one job queue, predict/large/train jobs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        bucket: s3.IBucket,
        image_directory: str,
        instance_types: Sequence[str],
        spot: bool,
        max_vcpus: int,
        standard: JobSize,
        large: JobSize | None,
        train: JobSize,
        attempts: int,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        runnable_timeout_minutes: int = 60,
        root_volume_size_gib: int = BASE_VOLUME_GIB,
        shard_pixels: int = 0,
    ) -> None:
        super().__init__(scope, id)
        launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            require_imdsv2=True,
            http_put_response_hop_limit=1,  # containers cannot reach the instance role
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume_size_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "Environment",
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            instance_classes=[instance_class(t) for t in instance_types if "." not in t],
            instance_types=[ec2.InstanceType(t) for t in instance_types if "." in t],
            use_optimal_instance_classes=False,
            spot=spot,
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
            minv_cpus=0,
            maxv_cpus=max_vcpus,
            launch_template=launch_template,
            # Pinned instead of Batch's default image type, which has changed over time
            # (ECS_AL2 -> ECS_AL2023); Amazon Linux 2 reaches end of support in 2026.
            # https://docs.aws.amazon.com/batch/latest/APIReference/API_Ec2Configuration.html
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023)],
            replace_compute_environment=False,
            update_to_latest_image_version=True,
        )
        fix_logical_id(self.compute_environment, C.ID_COMPUTE_ENVIRONMENT)
        self.job_queue = batch.JobQueue(
            self,
            "Queue",
            priority=1,
            job_state_time_limit_actions=runnable_time_limits(runnable_timeout_minutes),
            compute_environments=[
                batch.OrderedComputeEnvironment(
                    compute_environment=self.compute_environment, order=1
                )
            ],
        )
        fix_logical_id(self.job_queue, C.ID_JOB_QUEUE)
        self.queues = (self.job_queue,)

        image = ecs.ContainerImage.from_docker_image_asset(
            ecr_assets.DockerImageAsset(
                self,
                "Image",
                directory=image_directory,
                exclude=list(C.BATCH_IMAGE_EXCLUDES),
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
        )
        self.log_group = logs.LogGroup(
            self, "JobLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.predict_role = predict_role(self, "PredictRole", bucket=bucket)
        fix_logical_id(self.predict_role, C.ID_PREDICT_ROLE)
        self.train_role = train_role(self, "TrainRole", bucket=bucket)
        fix_logical_id(self.train_role, C.ID_TRAIN_ROLE)
        # One execution role (image pull, log writing) shared by every job definition.
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="rasterdrop Batch jobs: pull the image, write job logs",
        )
        defaults = {
            "bucket": bucket.bucket_name,
            "key": "",
            "version": "",
            "etag": "",
            "size": "0",
        }

        stack_name = Stack.of(self).stack_name
        predict_names = [f"{stack_name}-{C.JOB_DEFINITION_PREDICT_SUFFIX}"]
        if large is not None:
            predict_names.append(f"{stack_name}-{C.JOB_DEFINITION_PREDICT_LARGE_SUFFIX}")
        self.predict_role.add_to_policy(
            shard_submission(queue_arn=self.job_queue.job_queue_arn, definition_names=predict_names)
        )

        def sharding(name: str) -> dict[str, str]:
            """A predict job definition's own name and queue: where its planner submits."""
            return {
                "RASTERDROP_SHARD_PIXELS": str(shard_pixels),
                "RASTERDROP_JOB_QUEUE": self.job_queue.job_queue_arn,
                "RASTERDROP_JOB_DEFINITION": name,
            }

        def job(
            id_: str,
            logical: str,
            size: JobSize,
            command: Sequence[str],
            role: iam.IRole,
            name: str | None = None,
        ) -> batch.EcsJobDefinition:
            # a predict definition: its vCPUs (summary.json's compute) and where it shards
            own = {"RASTERDROP_JOB_VCPUS": str(size.vcpus), **sharding(name)} if name else {}
            definition = batch.EcsJobDefinition(
                self,
                id_,
                job_definition_name=name,
                container=batch.EcsEc2ContainerDefinition(
                    self,
                    f"{id_}Container",
                    image=image,
                    cpu=size.vcpus,
                    memory=Size.mebibytes(size.memory_mib),
                    command=list(command),
                    environment={**environment, **own},
                    job_role=role,
                    execution_role=self.execution_role,
                    logging=ecs.LogDriver.aws_logs(
                        stream_prefix=C.JOB_LOG_STREAM_PREFIX, log_group=self.log_group
                    ),
                ),
                parameters={**defaults, **(C.PREDICT_PART_DEFAULTS if name else {})},
                retry_attempts=attempts,
                retry_strategies=retry_strategies(),
                timeout=Duration.minutes(size.timeout_minutes),
                propagate_tags=True,
            )
            fix_logical_id(definition, logical)
            return definition

        self.predict_job = job(
            "Predict",
            C.ID_PREDICT_JOB,
            standard,
            C.PREDICT_COMMAND,
            self.predict_role,
            predict_names[0],
        )
        self.predict_large_job = (
            job(
                "PredictLarge",
                C.ID_PREDICT_LARGE_JOB,
                large,
                C.PREDICT_COMMAND,
                self.predict_role,
                predict_names[1],
            )
            if large is not None
            else None
        )
        self.train_job = job("Train", C.ID_TRAIN_JOB, train, C.TRAIN_COMMAND, self.train_role)
        # the accuracy assessment (cdk/assessment.py): light work, the standard job size
        self.assess_role = assess_role(self, "AssessRole", bucket=bucket)
        fix_logical_id(self.assess_role, C.ID_ASSESS_ROLE)
        self.assess_job = job(
            "Assess", C.ID_ASSESS_JOB, standard, C.ASSESS_COMMAND, self.assess_role
        )
