"""The status page, the health check and the error pages."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from engine.execution import start_case
from engine.models import UserAccount
from tests.support.protocol import detection
from tests.support.web import AppFactory, Browser, Site
from webapp import instance_secret_key
from webapp.demo.seed import DEMO_PASSWORD
from webapp.extensions import db


def test_status_page_lists_deployed_definitions_and_counts_without_personal_data(make_app: AppFactory) -> None:
    root = Path(__file__).resolve().parents[2]
    app = make_app(PROCESSES_DIR=root / "processes", FORMS_DIR=root / "forms", SESSION_COOKIE_SECURE=False)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["processes", "deploy", "--comment", "despliegue de prueba"]).exit_code == 0
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    browser = Browser(app.test_client())
    browser.login("admin", DEMO_PASSWORD)

    page = browser.get("/estado")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<code>intake</code>" in html
    assert "despliegue de prueba" in html
    assert "Activo" in html  # cases by status
    assert "Policía estatal" in html  # open tasks by agency kind
    assert "Persona ficticia" not in html  # no victim or aggressor data
    assert "VG-" not in html  # nor case references


def test_status_page_needs_a_signed_in_user(client: FlaskClient) -> None:
    response = client.get("/estado")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_status_page_of_an_empty_installation(make_app: AppFactory, password_hash: str) -> None:
    app = make_app(SESSION_COOKIE_SECURE=False)
    with app.app_context():
        db.session.add(UserAccount(username="admin", display_name="Admin", roles=["admin"], active=True,
                                   password_hash=password_hash))
        db.session.commit()
    browser = Browser(app.test_client())
    browser.login("admin")
    html = browser.get("/estado").get_data(as_text=True)
    assert "No hay ninguna definición desplegada." in html
    assert "No hay casos." in html


def test_healthz_answers_ok_after_querying_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_unknown_api_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/api/no-existe")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["status"] == 404


def test_unknown_page_is_a_spanish_404_page(client: FlaskClient) -> None:
    response = client.get("/no-existe")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Página no encontrada" in response.get_data(as_text=True)


def test_the_secret_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    key = instance_secret_key(tmp_path / "instance")
    assert len(key) == 64
    assert instance_secret_key(tmp_path / "instance") == key
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_unexpected_error_is_a_spanish_500_page_or_json_under_api(make_app: AppFactory) -> None:
    app = make_app(TESTING=False)

    def boom() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/boom", view_func=boom)
    app.add_url_rule("/api/boom", endpoint="api_boom", view_func=boom)
    app.logger.disabled = True  # the traceback Flask logs is expected here
    client = app.test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    assert "Error interno" in page.get_data(as_text=True)
    api = client.get("/api/boom")
    assert api.status_code == 500
    assert api.get_json()["error"]["status"] == 500


def counts(html: str, heading: str) -> dict[str, int]:
    """Return the rows (label -> count) of the status page's table under `heading`."""
    section = html.split(f"<h2>{heading}</h2>", 1)[1].split("</section>", 1)[0]
    return {label: int(count) for label, count in re.findall(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td></tr>',
                                                             section)}


def test_status_counts_only_the_cases_and_steps_of_the_viewers_territories(site: Site) -> None:
    site.open_case()
    site.open_case()
    with site.app.app_context():  # one case in the other territory, registered by its state police
        start_case(db.session(), territory_id=site.territories["there"], process_key="intake", data=detection(),
                   now=site.clock.now(), actor=site.actor("policia.madrid"), check_form=True)
        db.session.commit()
    seen = {}
    for username in ("policia", "policia.madrid", "admin", "disenadora"):
        html = site.browser(username).get("/estado").get_data(as_text=True)
        seen[username] = (counts(html, "Casos por estado").get("Activo", 0),
                          sum(counts(html, "Tareas abiertas por tipo de organismo").values()))
        assert "<code>intake</code>" in html  # the deployed definitions are everyone's
    here, there = seen["policia"], seen["policia.madrid"]
    assert (here[0], there[0]) == (2, 1)
    assert here[1] > there[1] > 0
    assert seen["admin"] == (3, here[1] + there[1])  # administrators: every territory
    assert seen["disenadora"] == (0, 0)  # no agency, no territory
