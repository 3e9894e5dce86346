"""Administration pages: agencies and users, for administrators only."""

from __future__ import annotations

import re

from sqlalchemy import select

from engine.models import Agency, UserAccount
from tests.support.web import PASSWORD, Browser, Site, csrf_token_of
from webapp.extensions import db

NEW_PASSWORD = "otra-clave-larga-nueva"


def user_row(html: str, username: str) -> str:
    return html.split(f"<td>{username}</td>")[1].split("</tr>")[0]


def test_only_administrators_get_in_and_refusals_are_audited(site: Site) -> None:
    assert "/login" in site.browser().get("/admin/").headers["Location"]
    police = site.browser("policia")
    page = police.get("/admin/")
    assert page.status_code == 403
    assert "Acceso denegado" in page.get_data(as_text=True)
    assert police.post("/admin/usuarios/nuevo", {"username": "intrusa"}).status_code == 403
    assert [(e.username, e.outcome) for e in site.audit("admin.access")] == [("policia", "denied")] * 2
    with site.app.app_context():
        assert db.session.execute(select(UserAccount).where(UserAccount.username == "intrusa")).first() is None
    assert 'href="/admin/"' not in police.get("/").get_data(as_text=True)
    assert 'href="/admin/"' in site.browser("admin").get("/").get_data(as_text=True)


def test_the_index_lists_agencies_with_their_territories_and_users_with_their_roles(site: Site) -> None:
    html = site.browser("admin").get("/admin/").get_data(as_text=True)
    assert "<td>Policía estatal de Madrid Centro</td>" in html
    assert "<td>Madrid Centro</td>" in html
    assert "<td>Policía estatal (Guardia Civil / Policía Nacional)</td>" in html  # the kind's label
    row = user_row(html, "policia.jefa")
    assert "<td>Profesional, Supervisión</td>" in row
    assert "Policía estatal (Guardia Civil / Policía Nacional) de Vegas Bajas" in row
    assert "Desactivar" in row


def test_an_administrator_creates_an_agency(site: Site) -> None:
    admin = site.browser("admin")
    form = admin.get("/admin/organismos/nuevo").get_data(as_text=True)
    assert '<label for="name">Nombre</label>' in form
    assert '<label for="territories-0">Madrid Centro</label>' in form
    response = admin.post("/admin/organismos/nuevo", [("name", "Policía Local de Montijo"), ("kind", "local_police"),
                                                      ("territories", "vegas-bajas")])
    assert response.status_code == 302
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Organismo creado: Policía Local de Montijo." in html
    assert "<td>Policía Local de Montijo</td>" in html
    with site.app.app_context():
        agency = db.session.execute(select(Agency).where(Agency.name == "Policía Local de Montijo")).scalar_one()
        assert [t.code for t in agency.territories] == ["vegas-bajas"]
    assert site.audit("agency.create")[0].object_id == agency.id
    missing = admin.post("/admin/organismos/nuevo", [("name", ""), ("kind", "local_police")])
    assert missing.status_code == 422
    assert '<p class="field-error" id="name-error">' in missing.get_data(as_text=True)


def test_an_administrator_creates_a_user_who_can_then_sign_in(site: Site) -> None:
    admin = site.browser("admin")
    agency = site.agencies[("social_services", "here")]
    response = admin.post("/admin/usuarios/nuevo", [
        ("username", "trabajadora"), ("display_name", "Trabajadora Social"), ("agency", str(agency)),
        ("roles", "professional"), ("roles", "supervisor"), ("email", ""), ("password", NEW_PASSWORD)])
    assert response.status_code == 302
    assert "Usuario creado: trabajadora." in admin.get("/admin/").get_data(as_text=True)
    with site.app.app_context():
        user = db.session.execute(select(UserAccount).where(UserAccount.username == "trabajadora")).scalar_one()
        assert (user.agency_id, sorted(user.roles)) == (agency, ["professional", "supervisor"])
    newcomer = Browser(site.app.test_client())
    newcomer.login("trabajadora", NEW_PASSWORD)
    assert "Trabajadora Social" in newcomer.get("/").get_data(as_text=True)


def test_a_refused_account_says_why_next_to_the_field(site: Site) -> None:
    admin = site.browser("admin")
    taken = admin.post("/admin/usuarios/nuevo", [("username", "policia"), ("display_name", "Otra"), ("agency", ""),
                                                 ("roles", "professional"), ("password", NEW_PASSWORD)])
    assert taken.status_code == 422
    assert '<p class="field-error" id="username-error">Ese nombre de usuario ya existe.</p>' in taken.get_data(
        as_text=True)
    short = admin.post("/admin/usuarios/nuevo", [("username", "nueva"), ("display_name", "Nueva"), ("agency", ""),
                                                 ("roles", "professional"), ("password", "corta")])
    assert short.status_code == 422
    assert "La contraseña debe tener al menos 12 caracteres." in short.get_data(as_text=True)
    no_role = admin.post("/admin/usuarios/nuevo", [("username", "nueva"), ("display_name", "Nueva"), ("agency", ""),
                                                   ("password", NEW_PASSWORD)])
    assert no_role.status_code == 422
    with site.app.app_context():
        assert db.session.execute(select(UserAccount).where(UserAccount.username == "nueva")).first() is None


def test_disabling_a_user_ends_their_session_and_enabling_lets_them_back(site: Site) -> None:
    police = site.browser("policia")
    assert police.get("/").status_code == 200
    admin = site.browser("admin")
    user_id = site.users["policia"]
    response = admin.post(f"/admin/usuarios/{user_id}/desactivar")
    assert response.status_code == 302
    html = admin.get("/admin/").get_data(as_text=True)
    assert "Usuario policia desactivado" in html
    assert "<td>Desactivado</td>" in user_row(html, "policia")
    ended = police.get("/")
    assert ended.status_code == 302
    assert "/login" in ended.headers["Location"]
    assert [e.object_id for e in site.audit("user.disable")] == [user_id]
    admin.post(f"/admin/usuarios/{user_id}/activar")
    site.browser("policia")  # signs in again
    assert admin.post(f"/admin/usuarios/{site.users['admin']}/desactivar").status_code == 302
    assert "No puede desactivar su propia cuenta." in admin.get("/admin/").get_data(as_text=True)


def test_resetting_a_password_ends_open_sessions_and_the_new_one_works(site: Site) -> None:
    police = site.browser("policia")
    admin = site.browser("admin")
    user_id = site.users["policia"]
    assert admin.post(f"/admin/usuarios/{user_id}/clave", {"password": "corta"}).status_code == 422
    response = admin.post(f"/admin/usuarios/{user_id}/clave", {"password": NEW_PASSWORD})
    assert response.status_code == 302
    assert police.get("/").status_code == 302
    fresh = Browser(site.app.test_client())
    fresh.login("policia", NEW_PASSWORD)
    old = site.app.test_client()
    token = csrf_token_of(old.get("/login").get_data(as_text=True))
    refused = old.post("/login", data={"username": "policia", "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 401
    assert [e.object_id for e in site.audit("user.reset_password")] == [user_id]


def test_changing_roles_ends_open_sessions_and_the_new_roles_apply_at_the_next_sign_in(site: Site) -> None:
    police = site.browser("policia")
    admin = site.browser("admin")
    user_id = site.users["policia"]
    form = admin.get(f"/admin/usuarios/{user_id}/roles").get_data(as_text=True)
    assert re.search(r'<option selected value="professional">|<option value="professional" selected>', form)
    assert admin.post(f"/admin/usuarios/{user_id}/roles", {}).status_code == 422  # at least one role
    assert police.get("/").status_code == 200
    response = admin.post(f"/admin/usuarios/{user_id}/roles", [("roles", "professional"), ("roles", "supervisor")])
    assert response.status_code == 302
    assert "Roles de policia cambiados" in admin.get("/admin/").get_data(as_text=True)
    ended = police.get("/")
    assert ended.status_code == 302
    assert "/login" in ended.headers["Location"]
    assert site.browser("policia").get("/supervision").status_code == 200
    [event] = site.audit("user.roles")
    assert (event.object_id, event.detail) == (user_id, {"from": ["professional"], "to": ["professional",
                                                                                         "supervisor"]})
