"""The Coordina web app: an application factory that only wires configuration, extensions and features."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from engine.db import configure_engine
from engine.errors import EngineError
from engine.localtime import LOCAL_TZ
from webapp.admin.mfa_views import bp as admin_mfa_bp
from webapp.admin.views import bp as admin_bp
from webapp.api.views import bp as api_bp
from webapp.auth.cli import agencies_cli, users_cli
from webapp.auth.mfa_views import bp as mfa_bp
from webapp.auth.session_views import bp as sessions_bp
from webapp.auth.sessions import load_user
from webapp.auth.views import bp as auth_bp
from webapp.cases.views import bp as cases_bp
from webapp.cli import deadlines_cli, demo_cli, processes_cli
from webapp.designer.views import bp as designer_bp
from webapp.errors import handle_engine_error, handle_http_error
from webapp.extensions import babel, csrf, db, login_manager, migrate
from webapp.favicon import bp as favicon_bp
from webapp.headers import init_headers
from webapp.i18n import init_i18n, select_locale, select_timezone
from webapp.levels import bp as levels_bp
from webapp.levels import init_levels
from webapp.limits import init_limits
from webapp.mesa.cli import mesa_cli
from webapp.mesa.views import bp as mesa_bp
from webapp.notifications.views import bp as notifications_bp
from webapp.proxies import trust_proxies
from webapp.resources.views import bp as resources_bp
from webapp.status.views import bp as status_bp
from webapp.supervision.views import bp as supervision_bp
from webapp.tasks.views import bp as tasks_bp
from webapp.transaction import init_transaction
from webapp.transfers.views import bp as transfers_bp
from webapp.worklist.views import bp as worklist_bp

REPO_DIR = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_DIR / "migrations"
KEY_FILE_NAME = "secret_key"
# Environment variables read at start-up, and the configuration key each one sets.
ENV_CONFIG = {
    "COORDINA_DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "COORDINA_SECRET_KEY": "SECRET_KEY",
    "COORDINA_PROCESSES_DIR": "PROCESSES_DIR",
    "COORDINA_FORMS_DIR": "FORMS_DIR",
    "COORDINA_BASE_URL": "BASE_URL",
    "COORDINA_SMTP_HOST": "SMTP_HOST",
    "COORDINA_SMTP_PORT": "SMTP_PORT",
    "COORDINA_SMTP_USER": "SMTP_USER",
    "COORDINA_SMTP_PASSWORD": "SMTP_PASSWORD",
    "COORDINA_SMTP_STARTTLS": "SMTP_STARTTLS",
    "COORDINA_MAIL_FROM": "MAIL_FROM",
    "COORDINA_TRUSTED_PROXIES": "TRUSTED_PROXIES",
    "COORDINA_REQUIRE_MFA_ROLES": "REQUIRE_MFA_ROLES",
    "COORDINA_MFA_KEY": "MFA_KEY",
    "COORDINA_MAX_REQUEST_BYTES": "MAX_CONTENT_LENGTH",
    "COORDINA_MAX_UPLOAD_BYTES": "MAX_UPLOAD_BYTES",
}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then instance file and environment, then `config` (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    load_config(app, config)
    trust_proxies(app)
    init_extensions(app)
    init_limits(app)  # before the blueprints: their URLs use its `id` converter
    init_headers(app)
    register_blueprints(app)
    register_cli(app)
    register_error_handlers(app)
    return app


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Apply defaults, `instance/config.py`, COORDINA_* variables and overrides, in that order."""
    default_database = f"sqlite:///{Path(app.instance_path) / 'coordina.sqlite'}"
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=default_database,
        PROCESSES_DIR=REPO_DIR / "processes",
        FORMS_DIR=REPO_DIR / "forms",
        # Sessions: cookies only over HTTPS, never readable by scripts, not sent cross-site.
        SESSION_COOKIE_SECURE=os.environ.get("COORDINA_INSECURE_COOKIES") != "1",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=10),
        IDLE_TIMEOUT=timedelta(minutes=30),
        BABEL_DEFAULT_LOCALE="es",
        BABEL_DEFAULT_TIMEZONE=LOCAL_TZ.key,
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS_DIR),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (which has an idle timeout)
        # Links in e-mails; e-mail is off (in-app notices only) until an SMTP host is set.
        BASE_URL="http://127.0.0.1:5000",
        SMTP_HOST="",
        SMTP_PORT=25,
        SMTP_USER="",
        SMTP_PASSWORD="",
        SMTP_STARTTLS=False,
        MAIL_FROM="coordina@localhost",
        # The designer's "Verificar" (and the check before a deploy): generated histories, their days,
        # worker processes, and a bound in seconds on the histories played (then on each shrinking).
        DESIGNER_VERIFY_BEFORE_DEPLOY=True,
        DESIGNER_VERIFY_HISTORIES=60,
        DESIGNER_VERIFY_DAYS=365,
        DESIGNER_VERIFY_WORKERS=1,
        DESIGNER_VERIFY_SECONDS=90.0,
    )
    app.config.from_pyfile("config.py", silent=True)
    for variable, key in ENV_CONFIG.items():
        if os.environ.get(variable):
            app.config[key] = os.environ[variable]
    if overrides:
        app.config.from_mapping(overrides)
    app.config["PROCESSES_DIR"] = Path(app.config["PROCESSES_DIR"])
    app.config["FORMS_DIR"] = Path(app.config["FORMS_DIR"])
    if app.config["SQLALCHEMY_DATABASE_URI"] == default_database:
        # SQLite creates the file but not its folder.
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))


def instance_secret_key(instance_path: Path) -> str:
    """Return this installation's random secret key, creating instance/secret_key on first use."""
    path = instance_path / KEY_FILE_NAME
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        # Readable by the owner only, and never overwrite a key another process just wrote.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as key_file:
                key_file.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip()


def init_extensions(app: Flask) -> None:
    """Bind the database (each request owning its transaction), migrations, sign-in, CSRF and translations."""
    db.init_app(app)
    init_transaction(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        configure_engine(db.engine)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = ""
    login_manager.user_loader(load_user)  # the cookie's server-side session must still be open
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    init_i18n(app)
    init_levels(app)


def register_blueprints(app: Flask) -> None:
    """Mount the feature blueprints."""
    app.register_blueprint(auth_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(mfa_bp)
    app.register_blueprint(worklist_bp)
    app.register_blueprint(tasks_bp)
    app.register_blueprint(cases_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(admin_mfa_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(supervision_bp)
    app.register_blueprint(designer_bp)
    app.register_blueprint(mesa_bp)
    app.register_blueprint(transfers_bp)
    app.register_blueprint(resources_bp)
    app.register_blueprint(status_bp)
    app.register_blueprint(levels_bp)
    app.register_blueprint(favicon_bp)
    csrf.exempt(api_bp)  # the API authenticates each request with a bearer token, not a cookie
    app.register_blueprint(api_bp)


def register_cli(app: Flask) -> None:
    """Add the `flask processes`, `flask deadlines` and `flask demo` command groups."""
    app.cli.add_command(processes_cli)
    app.cli.add_command(deadlines_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(agencies_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(mesa_cli)


def register_error_handlers(app: Flask) -> None:
    """Answer errors with Spanish pages, or with JSON under /api/; engine refusals alike, audited."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(EngineError, handle_engine_error)
