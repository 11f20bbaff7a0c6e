"""Where the Batch instances run: a NAT-free VPC of public subnets, or an existing VPC."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk import constants as C


class Network(Construct):
    """`vpc`, `subnets` for the compute environment and a `security_group` with no inbound rules.

    New VPC (default): public subnets only, no NAT gateway (no hourly cost),
    instances get public IPs for ECR/CloudWatch, S3 traffic goes through a free
    gateway endpoint, rejected traffic is flow-logged. With `vpc_id` the VPC
    is looked up (needs account and region) and its public or private subnets
    are used.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc_id: str | None,
        subnet_type: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        if vpc_id is not None:
            self.vpc: ec2.IVpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=vpc_id)
            kind = (
                ec2.SubnetType.PUBLIC
                if subnet_type == "public"
                else ec2.SubnetType.PRIVATE_WITH_EGRESS
            )
        else:
            flow_logs = logs.LogGroup(
                self,
                "FlowLogs",
                retention=log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            self.vpc = ec2.Vpc(
                self,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(C.VPC_CIDR),
                max_azs=C.VPC_MAX_AZS,
                nat_gateways=0,
                subnet_configuration=[
                    ec2.SubnetConfiguration(
                        name="public",
                        subnet_type=ec2.SubnetType.PUBLIC,
                        cidr_mask=C.VPC_SUBNET_MASK,
                        map_public_ip_on_launch=True,
                    )
                ],
                gateway_endpoints={
                    "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
                },
                flow_logs={
                    "Rejected": ec2.FlowLogOptions(
                        destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                        traffic_type=ec2.FlowLogTrafficType.REJECT,
                    )
                },
                restrict_default_security_group=False,
            )
            kind = ec2.SubnetType.PUBLIC
        self.subnets = ec2.SubnetSelection(subnet_type=kind)
        self.security_group = ec2.SecurityGroup(
            self,
            "BatchInstances",
            vpc=self.vpc,
            description="rasterdrop Batch instances: no inbound, outbound to AWS APIs",
            allow_all_outbound=True,
        )
