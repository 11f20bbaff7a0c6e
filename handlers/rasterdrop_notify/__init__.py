"""Notification logic for rasterdrop's Lambda handlers.

Plain modules, no Lambda runtime assumptions: every function that talks to AWS takes its
boto3 clients as arguments, so the handlers stay thin and the sandbox can reuse the same code.
Runtime dependencies are limited to what Lambda provides (boto3) and the Powertools layer
(pydantic); links are signed with ``hmac``/``hashlib`` from the standard library.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
