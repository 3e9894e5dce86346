"""Reverse proxies in front of the app: trust exactly as many as COORDINA_TRUSTED_PROXIES says.

Behind a proxy every request comes from the proxy's address, so sign-in throttling and the audit log
would see one address for everyone. With TRUSTED_PROXIES = n, Werkzeug's ProxyFix takes the client's
address (and scheme) from the last n entries of X-Forwarded-For (X-Forwarded-Proto), which the n
proxies set; anything a client wrote further left is ignored. With 0 (the default) the headers are
ignored altogether: setting it higher than the number of proxies really there lets clients choose
their address.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask) -> None:
    """Wrap the app in ProxyFix for the configured number of trusted proxies (none: leave it alone)."""
    count = int(app.config.get("TRUSTED_PROXIES") or 0)
    if count < 0:
        raise ValueError("COORDINA_TRUSTED_PROXIES must be 0 or more")
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
