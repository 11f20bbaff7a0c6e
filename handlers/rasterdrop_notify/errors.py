"""One root exception for the notification package."""

from __future__ import annotations


class NotifyError(Exception):
    """Root of every error the notification code raises on purpose."""


class ConfigurationError(NotifyError):
    """A required setting or the signing secret is missing or unusable."""


class NotificationInProgress(NotifyError):
    """Another invocation holds a fresh ``publishing`` marker for the same notification.

    Raised (not swallowed) so that Lambda's asynchronous retry comes back later: by then the
    other invocation has either finished (marker ``published``: nothing to do) or crashed
    (marker stale: this invocation takes over and publishes).
    """


class InvalidToken(NotifyError):
    """A link token is malformed, forged or altered (HTTP 403)."""


class ExpiredToken(NotifyError):
    """A link token is authentic but past its expiry (HTTP 410)."""
