"""Browser-test plumbing: the app served on 127.0.0.1 for Debian's chromium, and signing in there."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from tests.support.environment import unavailable
from webapp import create_app
from webapp.demo.seed import DEMO_PASSWORD
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# What the browser refused under the app's Content-Security-Policy, as its console reported it.
CSP_VIOLATIONS: list[str] = []
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]


@contextmanager
def live_app(
    tmp_path: Path, commands: Sequence[Sequence[str]], *, npm_package: str, **config: Any
) -> Iterator[tuple[str, Any]]:
    """Serve the app on a free port of 127.0.0.1 with a migrated SQLite database set up by `commands`."""
    if not CHROMIUM.exists() or shutil.which("node") is None:
        unavailable("browser tests need Debian's chromium (apt-get install chromium fonts-liberation)")
    if not (ROOT / "node_modules" / npm_package).exists():
        unavailable(f"browser tests need `npm ci` ({npm_package}, which the pages serve)")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'coordina.sqlite'}", "SECRET_KEY": "browser-tests",
        "SESSION_COOKIE_SECURE": False, "PROCESSES_DIR": ROOT / "processes", "FORMS_DIR": ROOT / "forms",
        **config,
    })
    runner = app.test_cli_runner()
    for command in (["db", "upgrade"], ["processes", "deploy"], *commands):
        result = runner.invoke(args=list(command))
        assert result.exit_code == 0, result.output
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", app
    finally:
        http.shutdown()
        with app.app_context():
            db.engine.dispose()


def record_csp_violation(message: Any) -> None:
    """Keep a console message that reports something the Content-Security-Policy refused."""
    if "Content Security Policy" in message.text:
        CSP_VIOLATIONS.append(f"{message.location.get('url', '')}: {message.text}")


def sign_in(browser: object, base: str, username: str) -> object:
    """Open a new browser context and sign in through the login page."""
    context = browser.new_context(locale="es-ES", viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    context.on("console", record_csp_violation)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url(re.compile(r".*/(\?.*)?$"))
    return page
