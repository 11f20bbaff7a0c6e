"""Where the client finds the API URL and token: environment first, then a config file."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rasterdrop_client.errors import ClientError, NotAuthorized

DEFAULT_CONFIG = Path("~/.config/rasterdrop/config.toml")


@dataclass(frozen=True)
class ClientSettings:
    api_url: str
    token: str


def load(env: dict[str, str] | None = None) -> ClientSettings:
    """``RASTERDROP_API_URL`` / ``RASTERDROP_TOKEN``, else ``RASTERDROP_CONFIG`` or
    ``~/.config/rasterdrop/config.toml`` (``api_url = "..."``, ``token = "..."``)."""
    env = dict(os.environ) if env is None else env
    path = Path(env.get("RASTERDROP_CONFIG") or DEFAULT_CONFIG).expanduser()
    file: dict[str, str] = {}
    if path.is_file():
        try:
            file = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ClientError(f"{path}: not valid TOML ({exc})") from None
    url = env.get("RASTERDROP_API_URL") or str(file.get("api_url", ""))
    token = env.get("RASTERDROP_TOKEN") or str(file.get("token", ""))
    if not url:
        raise ClientError(f"no API URL: set RASTERDROP_API_URL or api_url in {path}")
    if not token:
        raise NotAuthorized(f"no token: set RASTERDROP_TOKEN or token in {path}")
    return ClientSettings(url, token)
