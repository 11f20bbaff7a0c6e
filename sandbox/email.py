"""An SNS message as an email subscriber reads it."""

from __future__ import annotations

from sandbox.core import Message

SNS_SENDER = "no-reply@sns.amazonaws.com"


def format_email(message: Message, recipients: list[str], display_name: str = "") -> str:
    """Headers, body and SNS's footer, the way the email arrives."""
    sender = f"{display_name or 'AWS Notifications'} <{SNS_SENDER}>"
    to = (
        ", ".join(recipients)
        if recipients
        else "(no email subscription: notification_emails in cdk.json)"
    )
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(message.attributes.items()))
    lines = [
        f"From:    {sender}",
        f"To:      {to}",
        f"Date:    {message.timestamp.strftime('%a, %d %b %Y %H:%M:%S %z')}",
        f"Subject: {message.subject}",
    ]
    if attrs:
        lines.append(f"(SNS message attributes: {attrs})")
    lines += [
        "",
        message.body.rstrip(),
        "",
        "--",
        "If you wish to stop receiving notifications "
        "from this topic, use the unsubscribe link SNS adds here.",
    ]
    return "\n".join(lines)
