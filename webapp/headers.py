"""Security headers on every response: a strict Content-Security-Policy, no framing, no sniffing, HSTS.

A small `after_request` rather than a library: Flask-Talisman is barely maintained and would bring
a nonce machinery the app does not need (it has no inline script or style to allow); what is sent
is the fixed set below, readable in one place and tested on every page.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

# Everything from the app's own origin only: scripts and styles are files (no inline code, no eval),
# JSON data blocks (<script type="application/json">) are not scripts. Fonts and images may be data:
# URLs (bpmn-js embeds its icon font and logo so). Nothing may frame the app, nor a form post elsewhere.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
# dmn-js, the decision editor, sets style attributes as it lays its tables out: its page alone (a
# designer's) may apply inline styles. Scripts stay files of the app's own origin there too.
INLINE_STYLES_POLICY = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# Browser features the app never uses, switched off for it and anything it might embed.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer", "microphone",
    "payment", "usb"))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: Flask-WTF checks the Referer of forms posted over HTTPS.
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Two years, the subdomains too: only where the session cookie is HTTPS-only (COORDINA_INSECURE_COOKIES unset).
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"


def init_headers(app: Flask) -> None:
    """Add the security headers to every response of the app."""
    app.after_request(add_security_headers)


def allow_inline_styles(response: Response) -> Response:
    """Let the page of this response apply inline styles (the decision editor); still no inline script."""
    response.headers["Content-Security-Policy"] = INLINE_STYLES_POLICY
    return response


def add_security_headers(response: Response) -> Response:
    """Set the security headers a view did not set itself; HSTS when the session cookie is HTTPS-only."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response
