"""The tenants' API: bearer tokens, the authorizer, uploads, results and usage.

Plain modules that take their clients as arguments; the Lambda handlers
(``handlers/api_*.py``) are thin. Key rules come from ``rasterdrop_notify.paths`` (the
job's rule, parity-tested), links from ``rasterdrop_notify.tokens``/``links``: this package
decides nothing about keys or links itself.
"""
