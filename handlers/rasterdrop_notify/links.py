"""Links in the email: the link endpoint URL with a signed token, and its honest expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from rasterdrop_notify.settings import Settings


def link_expiry(now: datetime, settings: Settings, created_at: Any = None) -> int:
    """Epoch second the links stop working: the TTL, capped by output retention if set.

    Lifecycle expiration removes objects at the first midnight UTC after ``created + N days``,
    so ``created + N days`` is a safe, honest bound for a link that must still work.
    """
    expires = int(now.timestamp()) + settings.link_ttl_seconds
    if settings.output_retention_days:
        try:
            created = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        except ValueError:
            created = now
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        expires = min(expires, int(created.timestamp()) + settings.output_retention_days * 86400)
    return max(expires, int(now.timestamp()))


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/?t={quote(token, safe='.-_')}"
