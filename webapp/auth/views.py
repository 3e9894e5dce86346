"""Sign in, sign out, choose the language; the idle timeout and the session-generation check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from webapp.audit import audit
from webapp.auth.mfa_step import begin_second_factor
from webapp.auth.operations import authenticate
from webapp.auth.principal import load_principal
from webapp.auth.sessions import begin_browser_session, end_browser_session
from webapp.extensions import db
from webapp.i18n import LANGUAGES
from webapp.transaction import apart

bp = Blueprint("auth", __name__, template_folder="templates")


class LoginForm(FlaskForm):  # type: ignore[misc]
    """Username and password."""

    username = StringField(_l("Usuario"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Contraseña"), validators=[DataRequired(), Length(max=256)])


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the sign-in form and sign in."""
    form = LoginForm()
    if form.validate_on_submit():
        with apart() as attempt:  # the audit rows and failure counters are kept, whatever the outcome
            result = authenticate(attempt, form.username.data or "", form.password.data or "",
                                  now=datetime.now(UTC), ip=request.remote_addr)
        if result.user is not None:
            # Multi-factor sign-in (webapp/auth/mfa_views.py): a second step before the session starts.
            second_step = begin_second_factor(result.user, _safe_next(request.args.get("next")))
            if second_step is not None:
                return second_step
            start_session(result.user.id)
            return redirect(_safe_next(request.args.get("next")))
        messages = {
            "locked": _("Cuenta bloqueada temporalmente por demasiados intentos fallidos."),
            "throttled": _("Demasiados intentos desde esta dirección. Espere unos minutos."),
        }
        flash(messages.get(result.reason, _("Usuario o contraseña incorrectos.")), "error")
        return render_template("auth/login.html", form=form), 401 if result.reason == "invalid" else 429
    return render_template("auth/login.html", form=form)


def start_session(user_id: int) -> None:
    """Sign the user in: a new cookie session recorded on the server, the idle clock started."""
    principal = load_principal(db.session(), user_id)
    assert principal is not None
    begin_browser_session(principal)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    """Sign out."""
    audit(db.session(), "logout")
    end_browser_session("logout")  # the server-side session ends: a saved cookie no longer works
    flash(_("Ha cerrado la sesión."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language() -> ResponseReturnValue:
    """Switch the interface language (Spanish or English) for this session."""
    chosen = request.form.get("language", "")
    if chosen in LANGUAGES:
        session["language"] = chosen
    return redirect(_safe_next(request.form.get("next")))


def _safe_next(target: str | None) -> str:
    """Only follow redirects within this site."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("worklist.index")


@bp.before_app_request
def enforce_idle_timeout() -> ResponseReturnValue | None:
    """Sign out a browser session left idle for longer than IDLE_TIMEOUT."""
    if request.path.startswith("/api/") or not current_user.is_authenticated:
        return None
    idle: timedelta = current_app.config["IDLE_TIMEOUT"]
    now = datetime.now(UTC).timestamp()
    seen = session.get("seen")
    if isinstance(seen, (int, float)) and now - seen > idle.total_seconds():
        audit(db.session(), "logout", outcome="timeout")  # the redirect commits it
        end_browser_session("idle")
        flash(_("La sesión ha caducado por inactividad. Vuelva a entrar."), "info")
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    session["seen"] = now
    return None
