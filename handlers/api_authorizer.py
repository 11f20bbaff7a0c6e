"""API Gateway TOKEN authorizer: bearer token → tenant, policy and usage-plan key."""

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from rasterdrop_api import authorizer, runtime

logger = Logger()


@logger.inject_lambda_context  # never logs the event: it holds the token
def handler(event: dict, context: LambdaContext) -> dict:
    prefix = os.environ["RASTERDROP_TOKEN_PARAMETER_PREFIX"]
    return authorizer.authorize(event, runtime.client("ssm"), prefix)
