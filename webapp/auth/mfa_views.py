"""Multi-factor sign-in pages: the second step after the password, and enrolment (forced or chosen)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from engine.models import UserAccount
from webapp.audit import audit
from webapp.auth.mfa import (
    check_second_factor,
    confirm_enrolment,
    enrolment_qr_svg,
    is_enrolled,
    record_second_factor_failure,
    start_enrolment,
)
from webapp.auth.mfa_step import mfa_key, pending_next, pending_user
from webapp.auth.views import start_session
from webapp.extensions import db
from webapp.transaction import apart

bp = Blueprint("mfa", __name__, template_folder="templates")


class CodeForm(FlaskForm):  # type: ignore[misc]
    """A code from the authenticator app (or, at sign-in, a recovery code)."""

    code = StringField(_l("Código"), validators=[DataRequired(), Length(max=32)],
                       render_kw={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"})


@bp.route("/login/segundo-factor", methods=["GET", "POST"])
def second_factor() -> ResponseReturnValue:
    """Ask the user whose password was accepted for a current code or a recovery code; then sign her in."""
    user = pending_user()
    if user is None or not is_enrolled(db.session(), user.id):
        return redirect(url_for("auth.login"))
    user_id = user.id  # read now: apart() below expires the request's objects
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/mfa_second_factor.html", form=form)
    now = datetime.now(UTC)
    if user.locked_until is not None and user.locked_until > now:
        flash(_("Cuenta bloqueada temporalmente por demasiados intentos fallidos."), "error")
        return render_template("auth/mfa_second_factor.html", form=form), 429
    if not check_second_factor(db.session(), user_id, form.code.data or "", mfa_key(), now=now):
        with apart() as attempt:  # the failure counts even though the answer undoes the request's work
            record_second_factor_failure(attempt, user_id, now=now)
        form.code.errors = [_("El código no es válido o ya se ha usado.")]
        return render_template("auth/mfa_second_factor.html", form=form), 401
    target = pending_next()
    start_session(user_id)
    audit(db.session(), "login.second_factor", now=now)
    return redirect(target)


@bp.route("/cuenta/doble-factor", methods=["GET", "POST"])
def enrol() -> ResponseReturnValue:
    """Enrol an authenticator app: the signed-in user (again, replacing hers), or one who must before signing in."""
    user = _enrolling_user()
    if user is None:
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        codes = confirm_enrolment(db.session(), user.id, form.code.data or "", mfa_key(), now=datetime.now(UTC))
        if codes is not None:
            target = url_for("worklist.index")
            if not current_user.is_authenticated:
                target = pending_next()
                start_session(user.id)
            return _no_store(render_template("auth/mfa_codes.html", codes=codes, target=target))
        form.code.errors = [_("El código no coincide. Compruebe la hora del dispositivo y escriba el código actual.")]
    secret = start_enrolment(db.session(), user.id, mfa_key())
    page = render_template("auth/mfa_enrol.html", form=form, secret=secret, forced=not current_user.is_authenticated,
                           qr=enrolment_qr_svg(secret, user.username), enrolled=is_enrolled(db.session(), user.id))
    return _no_store(page, 422 if form.errors else 200)


def _enrolling_user() -> UserAccount | None:
    """Return who may enrol: the signed-in user, or a half-signed-in one who has no second factor yet."""
    if current_user.is_authenticated:
        return db.session.get(UserAccount, current_user.user_id)
    user = pending_user()
    if user is None or is_enrolled(db.session(), user.id):
        return None  # a second factor is replaced only after signing in with it
    return user


def _no_store(page: str, status: int = 200) -> Response:
    """Keep a page that shows a secret or recovery codes out of every cache."""
    response = current_app.make_response((page, status))
    response.headers["Cache-Control"] = "no-store"
    return response
