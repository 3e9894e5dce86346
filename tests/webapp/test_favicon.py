"""The site's icon is served where browsers look for it, to anyone, and every page points at it."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_the_favicon_is_served_to_anonymous_visitors_and_linked_from_the_pages(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.get_data().startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    login = client.get("/login", follow_redirects=True).get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/favicon.ico">' in login
