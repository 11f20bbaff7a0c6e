"""rasterdrop-client: submit GeoTIFFs to a rasterdrop tenant API, wait, download."""

from rasterdrop_client.api import Client, Result, Submission
from rasterdrop_client.errors import (
    ClientError,
    Failed,
    InvalidInput,
    NotAuthorized,
    OverQuota,
    TimedOut,
)

__all__ = [
    "Client",
    "ClientError",
    "Failed",
    "InvalidInput",
    "NotAuthorized",
    "OverQuota",
    "Result",
    "Submission",
    "TimedOut",
]
