"""Administration pages (role admin): agencies and users, through the same operations as the CLI."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, Field, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from engine.models import Agency, AgencyKind, Territory, UserAccount
from engine.models.user import ROLES
from webapp.auth.operations import AccountError, create_agency, create_user, reset_password, set_active, set_roles
from webapp.auth.passwords import MIN_LENGTH
from webapp.extensions import db, login_manager
from webapp.requests import deny

bp = Blueprint("admin", __name__, template_folder="templates", url_prefix="/admin")

ROLE_LABELS = {"professional": _l("Profesional"), "supervisor": _l("Supervisión"),
               "designer": _l("Diseño del protocolo"), "admin": _l("Administración")}


class AgencyForm(FlaskForm):  # type: ignore[misc]
    """A new agency: name, kind, territories served."""

    name = StringField(_l("Nombre"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Tipo de organismo"), validators=[DataRequired()])
    territories = SelectMultipleField(_l("Territorios que atiende"), validators=[DataRequired()])


class UserForm(FlaskForm):  # type: ignore[misc]
    """A new user of an agency, with roles and a first password."""

    username = StringField(_l("Usuario"), validators=[DataRequired(), Length(max=80)])
    display_name = StringField(_l("Nombre completo"), validators=[DataRequired(), Length(max=200)])
    agency = SelectField(_l("Organismo"))
    roles = SelectMultipleField(_l("Roles"), validators=[DataRequired()])
    email = EmailField(_l("Correo electrónico"), validators=[Optional(), Length(max=254)])
    password = PasswordField(_l("Contraseña inicial"), validators=[DataRequired(), Length(max=256)],
                             description=_l("Al menos %(count)s caracteres.", count=MIN_LENGTH))


class PasswordForm(FlaskForm):  # type: ignore[misc]
    """A new password for a user."""

    password = PasswordField(_l("Nueva contraseña"), validators=[DataRequired(), Length(max=256)],
                             description=_l("Al menos %(count)s caracteres.", count=MIN_LENGTH))


class RolesForm(FlaskForm):  # type: ignore[misc]
    """The roles a user holds."""

    roles = SelectMultipleField(_l("Roles"), validators=[DataRequired()])


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A button that changes something: only its CSRF token."""


@bp.before_request
def admins_only() -> ResponseReturnValue | None:
    """Let only administrators in; refusals are audited."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # type: ignore[no-any-return]
    if not current_user.has_role("admin"):
        deny(403, action="admin.access", object_type="admin")
    return None


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """List agencies (with their territories) and users."""
    agencies = db.session.execute(select(Agency).order_by(Agency.name)).scalars().all()
    users = db.session.execute(
        select(UserAccount, Agency.name).outerjoin(Agency, Agency.id == UserAccount.agency_id)
        .order_by(UserAccount.username)
    ).all()
    kinds = dict(db.session.execute(select(AgencyKind.code, AgencyKind.name)).all())
    return render_template("admin/index.html", agencies=agencies, users=users, kinds=kinds, role_labels=ROLE_LABELS,
                           confirm=ConfirmForm())


@bp.route("/organismos/nuevo", methods=["GET", "POST"])
@login_required
def new_agency() -> ResponseReturnValue:
    """Create an agency."""
    form = AgencyForm()
    kinds = db.session.execute(select(AgencyKind.code, AgencyKind.name).order_by(AgencyKind.name)).all()
    territories = db.session.execute(select(Territory.code, Territory.name).order_by(Territory.name)).all()
    form.kind.choices = [(code, name) for code, name in kinds]
    form.territories.choices = [(code, name) for code, name in territories]
    if form.validate_on_submit():
        try:
            agency = create_agency(db.session(), name=form.name.data or "", kind=form.kind.data or "",
                                   territory_codes=form.territories.data or [])
        except AccountError as exc:
            _refused(form.name, exc)
        else:
            flash(_("Organismo creado: %(name)s.", name=agency.name), "info")
            return redirect(url_for("admin.index"))
    return render_template("admin/agency_form.html", form=form), 422 if form.errors else 200


@bp.route("/usuarios/nuevo", methods=["GET", "POST"])
@login_required
def new_user() -> ResponseReturnValue:
    """Create a user."""
    form = UserForm()
    agencies = db.session.execute(select(Agency.id, Agency.name).order_by(Agency.name)).all()
    form.agency.choices = [("", _("Sin organismo"))] + [(str(i), name) for i, name in agencies]
    form.roles.choices = [(role, str(ROLE_LABELS[role])) for role in ROLES]
    if form.validate_on_submit():
        username = (form.username.data or "").strip()
        try:
            create_user(db.session(), username=username, display_name=form.display_name.data or "",
                        agency_id=int(form.agency.data) if form.agency.data else None, roles=form.roles.data or [],
                        password=form.password.data or "", email=form.email.data or None)
        except AccountError as exc:
            _refused(form.password if "password" in str(exc) else form.username, exc)
        else:
            flash(_("Usuario creado: %(username)s.", username=username), "info")
            return redirect(url_for("admin.index"))
    return render_template("admin/user_form.html", form=form), 422 if form.errors else 200


@bp.post("/usuarios/<id:user_id>/desactivar")
@login_required
def disable_user(user_id: int) -> ResponseReturnValue:
    """Disable a user: their sessions and tokens end at once."""
    return _set_active(user_id, False)


@bp.post("/usuarios/<id:user_id>/activar")
@login_required
def enable_user(user_id: int) -> ResponseReturnValue:
    """Enable a disabled user."""
    return _set_active(user_id, True)


@bp.route("/usuarios/<id:user_id>/clave", methods=["GET", "POST"])
@login_required
def password(user_id: int) -> ResponseReturnValue:
    """Set a new password for a user (and unlock the account)."""
    user = db.session.get(UserAccount, user_id) or abort(404)
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            reset_password(db.session(), user, form.password.data or "")
        except AccountError as exc:
            _refused(form.password, exc)
        else:
            flash(_("Contraseña de %(username)s cambiada: sus sesiones abiertas se han cerrado.",
                    username=user.username), "info")
            return redirect(url_for("admin.index"))
    return render_template("admin/password.html", form=form, user=user), 422 if form.errors else 200


@bp.route("/usuarios/<id:user_id>/roles", methods=["GET", "POST"])
@login_required
def roles(user_id: int) -> ResponseReturnValue:
    """Give a user other roles: her sessions and tokens end, she signs in again with the new ones."""
    user = db.session.get(UserAccount, user_id) or abort(404)
    form = RolesForm(data={"roles": user.roles or []})
    form.roles.choices = [(role, str(ROLE_LABELS[role])) for role in ROLES]
    if form.validate_on_submit():
        set_roles(db.session(), user, form.roles.data or [])
        flash(_("Roles de %(username)s cambiados: sus sesiones abiertas se han cerrado.", username=user.username),
              "info")
        return redirect(url_for("admin.index"))
    return render_template("admin/roles.html", form=form, user=user), 422 if form.errors else 200


def _set_active(user_id: int, active: bool) -> ResponseReturnValue:
    user = db.session.get(UserAccount, user_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.id == current_user.user_id and not active:
        flash(_("No puede desactivar su propia cuenta."), "error")
        return redirect(url_for("admin.index"))
    set_active(db.session(), user, active)
    if active:
        flash(_("Usuario %(username)s activado.", username=user.username), "info")
    else:
        flash(_("Usuario %(username)s desactivado: sus sesiones se han cerrado.", username=user.username), "info")
    return redirect(url_for("admin.index"))


def _refused(field: Field, exc: AccountError) -> None:
    """Show why the operation was refused next to the field it is about (the 422 answer undoes the work)."""
    field.errors = [*field.errors, account_message(exc)]


def account_message(exc: AccountError) -> str:
    """Say in Spanish why an account operation was refused (its own message is English, for logs)."""
    text = str(exc)
    known = (
        ("unknown agency kind", _("Tipo de organismo desconocido.")),
        ("unknown territories", _("Algún territorio no existe.")),
        ("roles must be among", _("Elija al menos un rol válido.")),
        ("is taken", _("Ese nombre de usuario ya existe.")),
        ("does not exist", _("El organismo no existe.")),
        ("password: at least", _("La contraseña debe tener al menos %(count)s caracteres.", count=MIN_LENGTH)),
        ("password: no spaces", _("La contraseña no puede empezar ni terminar con espacios.")),
    )
    return str(next((spanish for english, spanish in known if english in text), _("No se ha podido guardar.")))
