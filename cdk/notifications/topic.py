"""The notification topic, its email subscriptions and the key that signs the emailed links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id


def subscriptions_by_email(
    emails: Sequence[str], tenant_routing: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...] | None]:
    """email -> tenants it is limited to (None: every message).

    SNS allows one subscription per topic and endpoint, so an address listed
    for several tenants gets one subscription filtered on all of them, and an
    address in `emails` is not filtered at all.
    """
    result: dict[str, tuple[str, ...] | None] = {email: None for email in emails}
    for tenant, addresses in tenant_routing.items():
        for email in addresses:
            if email in result and result[email] is None:
                continue
            result[email] = (*(result.get(email) or ()), tenant)
    return result


class NotificationTopic(Construct):
    """Topic (customer-key encrypted, TLS only) with one email subscription per address,
    filtered on the `tenant` attribute where routing says so, and the link signing secret.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        emails: Sequence[str],
        tenant_routing: Mapping[str, Sequence[str]],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        # "Default" hides this level from CDK's ids: the topic policy and the subscriptions
        # keep the logical ids they had before the topic got a construct of its own.
        self.topic = sns.Topic(
            self, "Default", display_name="rasterdrop", master_key=key, enforce_ssl=True
        )
        fix_logical_id(self.topic, C.ID_TOPIC)
        for email, tenants in subscriptions_by_email(emails, tenant_routing).items():
            policy = (
                None
                if tenants is None
                else {"tenant": sns.SubscriptionFilter.string_filter(allowlist=list(tenants))}
            )
            self.topic.add_subscription(subs.EmailSubscription(email, filter_policy=policy))
        self.secret = secretsmanager.Secret(
            self,
            "LinkSecret",
            description="rasterdrop: HMAC key signing the links in notification emails",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 (JSON template, not a secret)
                generate_string_key="key",
                password_length=64,
                exclude_punctuation=True,
            ),
            removal_policy=removal_policy,
        )
        fix_logical_id(self.secret, C.ID_LINK_SECRET)
