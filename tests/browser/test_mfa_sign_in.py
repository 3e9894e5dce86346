"""Multi-factor sign-in in a real browser (Playwright driving Debian's chromium).

An administrator created outside the demo (so not exempt) gives her password, is sent to enrolment, reads
the key next to the QR code, confirms it with a code her "phone" (pyotp) computes, sees the recovery
codes once, signs out, and signs in again with the password and a fresh code. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp

from tests.support.browser import ARTIFACTS, live_app
from webapp.auth.operations import create_user
from webapp.extensions import db

PASSWORD = "una-clave-larga-de-prueba"


def password_step(page: object, base: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Usuario").fill("root")  # type: ignore[attr-defined]
    page.get_by_label("Contraseña").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Entrar").click()  # type: ignore[attr-defined]


def test_an_administrator_enrols_and_signs_in_with_a_generated_code(tmp_path: Path, browser: object) -> None:
    with live_app(tmp_path, [["demo", "seed"]], npm_package="bpmn-js") as (base, app):
        with app.app_context():
            create_user(db.session(), username="root", display_name="Raíz", agency_id=None, roles=["admin"],
                        password=PASSWORD)
            db.session.commit()
        context = browser.new_context(locale="es-ES")  # type: ignore[attr-defined]
        page = context.new_page()

        password_step(page, base)
        page.wait_for_url(re.compile(r".*/cuenta/doble-factor$"))
        assert page.locator("figure.qr svg").count() == 1
        secret = page.locator("#mfa-secret").inner_text()
        page.screenshot(path=str(ARTIFACTS / "mfa-enrolment.png"), full_page=True)
        page.get_by_label("Código").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Activar").click()
        assert page.locator(".recovery-codes li").count() == 10
        page.get_by_role("link", name="Continuar").click()
        page.wait_for_url(re.compile(r".*/(\?.*)?$"))
        page.get_by_role("button", name="Salir").click()
        page.wait_for_url(re.compile(r".*/login$"))

        password_step(page, base)
        page.wait_for_url(re.compile(r".*/login/segundo-factor$"))
        page.get_by_label("Código").fill(pyotp.TOTP(secret).at(time.time() + 30))  # the enrolment's code is used
        page.get_by_role("button", name="Verificar").click()
        page.wait_for_url(re.compile(r".*/(\?.*)?$"))
        assert page.get_by_role("link", name="Administración").count() == 1
        page.screenshot(path=str(ARTIFACTS / "mfa-signed-in.png"), full_page=True)
        context.close()
