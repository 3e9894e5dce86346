"""Designer pages and their JSON endpoints: definitions, editors, validate, try, deploy, diff, download, upload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from engine.diff import diff_definitions
from engine.drafts import (
    check_file_name,
    deploy_drafts,
    discard_draft,
    draft_files,
    get_draft,
    list_drafts,
    save_draft,
    upload_file,
    validate_drafts,
)
from engine.errors import ConflictError, DefinitionError, NotFoundError, Problem
from engine.models import Definition
from engine.trial import parse_scenario, run_trial
from webapp import clock
from webapp.audit import audit, audit_apart
from webapp.auth.principal import ROLE_DESIGNER
from webapp.designer import queries
from webapp.designer.operations import default_scenario, preview, skeleton
from webapp.designer.schemas import DraftSave, FormPreview, ProblemOut
from webapp.designer.verification import settings_of, verify_drafts
from webapp.extensions import db
from webapp.headers import allow_inline_styles
from webapp.limits import MAX_JSON_DEPTH, TOO_DEEP, accepts_upload, depth_message, load_bounded, parse_id, too_deep
from webapp.requests import deny, posted_int, posted_version

bp = Blueprint("designer", __name__, url_prefix="/designer", template_folder="templates",
               static_folder="static", static_url_path="/static")

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
# The modeller bundles come from the npm packages the repository pins (package-lock.json): no CDN.
VENDOR = {
    "bpmn-js": NODE_MODULES / "bpmn-js" / "dist",
    "dmn-js": NODE_MODULES / "dmn-js" / "dist",
    "bpmn-js-i18n": NODE_MODULES / "bpmn-js-i18n" / "translations",
}
CONTENT_TYPES = {"process": "application/xml", "decision": "application/xml", "form": "application/json",
                 "levels": "application/json", "invariants": "application/json"}
UPLOAD_LIMIT = 5 * 1024 * 1024


@bp.before_request
@login_required
def _designers_only() -> None:
    """Only protocol designers reach these pages: anyone else gets 403, and the refusal is audited."""
    if not current_user.has_role(ROLE_DESIGNER):
        deny(403, action="designer.access", detail={"path": request.path})


@bp.get("")
def index() -> ResponseReturnValue:
    """Show every process, decision table and form with its versions, the drafts, and the deploy form."""
    return render_template("designer/index.html", groups=queries.overview(db.session()),
                           drafts=list_drafts(db.session()))


@bp.get("/editar/<file_name>")
def edit(file_name: str) -> ResponseReturnValue:
    """Open a file in its editor: the BPMN modeller, the DMN editor or the form editor."""
    file_name = _file_name_or_404(file_name)
    source = queries.editor_source(db.session(), file_name, skeleton(file_name))
    session = db.session()
    page = make_response(render_template(
        f"designer/edit_{source.kind}.html", source=source,
        editor={"file": file_name, "version": source.draft.row_version if source.draft else None,
                "forms": queries.form_names(session), "decisions": queries.decision_files(session),
                "kinds": queries.agency_kinds(session)},
    ))
    return allow_inline_styles(page) if source.kind == "decision" else page


@bp.get("/fuente/<file_name>")
def source_text(file_name: str) -> ResponseReturnValue:
    """Return the text an editor opens (its draft, else the deployed version), for the modellers."""
    file_name = _file_name_or_404(file_name)
    source = queries.editor_source(db.session(), file_name, skeleton(file_name))
    return Response(source.content, mimetype=CONTENT_TYPES[source.kind])


@bp.post("/borradores/<file_name>")
@accepts_upload  # a whole file, as large as an uploaded one
def save(file_name: str) -> ResponseReturnValue:
    """Save the draft of a file on the row version the editor loaded (409 when someone saved since)."""
    file_name = _file_name_or_404(file_name)
    try:
        body = DraftSave().load(request.get_json(silent=True) or {})
    except ValidationError as exc:
        return _json_error(400, _("Petición incorrecta."), fields=exc.messages)
    if too_deep(body["content"]):
        return _too_deep_error()
    try:
        draft = save_draft(db.session(), file_name, body["content"], expected_version=body["version"],
                           actor=current_user.username, now=clock.now())
    except ConflictError:
        audit_apart("draft.save", object_type="draft", outcome="failed",
                    detail={"file": file_name, "reason": "conflict"})
        current = get_draft(db.session(), file_name)
        return _json_error(409, _("Otra persona ha guardado este borrador mientras lo editaba: vuelva a cargarlo "
                                  "(sus cambios no se han guardado)."),
                           current_version=current.row_version if current else None)
    except DefinitionError as exc:
        return _json_error(422, _("No se ha podido guardar."), problems=_problems(exc.problems))
    audit(db.session(), "draft.save", object_type="draft", object_id=draft.id,
          detail={"file": file_name, "version": draft.row_version})
    return jsonify(version=draft.row_version, saved_at=draft.updated_at.isoformat())


@bp.post("/borradores/<file_name>/descartar")
def discard(file_name: str) -> ResponseReturnValue:
    """Discard the draft of a file; its deployed versions stay."""
    file_name = _file_name_or_404(file_name)
    try:
        discard_draft(db.session(), file_name, expected_version=posted_version())
    except (ConflictError, NotFoundError):
        audit_apart("draft.discard", object_type="draft", outcome="failed", detail={"file": file_name})
        flash(_("El borrador ha cambiado o ya no existe: revise la lista antes de descartarlo."), "error")
        return redirect(url_for("designer.index"))
    audit(db.session(), "draft.discard", object_type="draft", detail={"file": file_name})
    flash(_("Borrador de %(file)s descartado.", file=file_name), "info")
    return redirect(url_for("designer.index"))


@bp.post("/validar")
def validate() -> ResponseReturnValue:
    """Validate every draft together with the deployed definitions, as a deployment would."""
    problems = validate_drafts(db.session()).problems  # writes nothing
    audit(db.session(), "definition.validate", object_type="draft", outcome="ok" if not problems else "failed",
          detail={"files": [d.file_name for d in list_drafts(db.session())], "problems": len(problems)})
    return jsonify(problems=_problems(problems), valid=not problems)


@bp.post("/formularios/vista-previa")
def form_preview() -> ResponseReturnValue:
    """Render a form definition with the task page's renderer, or list why it cannot be used."""
    try:
        body = FormPreview().load(request.get_json(silent=True) or {})
    except ValidationError as exc:
        return _json_error(400, _("Petición incorrecta."), fields=exc.messages)
    if too_deep(body["content"]):
        return _too_deep_error()
    html, problems = preview(db.session(), request.args.get("file", "formulario.json"), body["content"])
    return jsonify(html=str(html) if html is not None else None, problems=_problems(problems))


@bp.route("/probar", methods=["GET", "POST"])
def try_drafts() -> ResponseReturnValue:
    """Try the drafts: a scenario on a synthetic case with a simulated clock; nothing is kept."""
    session = db.session()
    processes, territories = queries.process_keys(session), queries.territories_with_agencies(session)
    process_key = request.values.get("process") or (processes[0][0] if processes else "")
    territory = request.values.get("territory", "")
    text = request.values.get("scenario") or json.dumps(default_scenario(session, process_key, clock.now()),
                                                         ensure_ascii=False, indent=2)
    report, problems, error = None, list[Problem](), None
    if request.method == "POST":
        report, problems, error = _run_try(process_key, territory, text)
    return render_template("designer/try.html", processes=processes, territories=territories, process_key=process_key,
                           territory=territory, scenario=text, report=report, problems=problems, error=error,
                           drafts=list_drafts(session))


def _run_try(process_key: str, territory: str, text: str) -> tuple[Any, list[Problem], str | None]:
    session = db.session()
    try:
        raw = load_bounded(text)
        if raw is TOO_DEEP:
            raise ValueError(str(depth_message()))
        if not isinstance(raw, dict):
            raise ValueError(_("El escenario es un objeto JSON."))
        territory_id = parse_id(territory)
        if territory_id is None:
            raise ValueError(_("Elija un territorio."))
        scenario = parse_scenario(raw, process_key=process_key, territory_id=territory_id)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return None, [], str(exc)
    files = draft_files(list_drafts(session))
    try:
        report = run_trial(session, files, scenario, actor=current_user.actor, now=clock.now())
    except DefinitionError as exc:  # the trial rolled its savepoint back: nothing of it is kept
        audit(session, "definition.try", object_type="draft", outcome="failed",
              detail={"process": process_key, "problems": len(exc.problems)})
        return None, exc.problems, None
    audit(session, "definition.try", object_type="draft", outcome="ok" if not report.problems else "failed",
          detail={"process": process_key, "territory_id": scenario.territory_id,
                  "files": [f.name for f in files], "tasks": len(report.tasks)})
    return report, [], None


@bp.route("/verificar", methods=["GET", "POST"])
def verify() -> ResponseReturnValue:
    """Verify the drafts over the deployed protocol on generated case histories; show what breaks, in Spanish."""
    session = db.session()
    report, problems = None, list[Problem]()
    if request.method == "POST":
        try:
            report, files = verify_drafts(session, settings_of(current_app.config))
        except DefinitionError as exc:
            problems = exc.problems
            files = [d.file_name for d in list_drafts(session)]
        audit(session, "definition.verify", object_type="draft",
              outcome="ok" if report is not None and report.ok and report.cases else "failed",
              detail={"files": files, "histories": report.histories if report else 0,
                      "broken": [f.invariant_id for f in report.findings] if report else [],
                      "problems": len(problems)})
    return render_template("designer/verify.html", report=report, problems=problems, drafts=list_drafts(session))


@bp.post("/desplegar")
def deploy() -> ResponseReturnValue:
    """Deploy every draft as new versions with a comment; running instances keep their versions.

    The drafts are verified first: when an invariant breaks, the deploy is refused unless the
    designer overrides it with a reason, which is audited with what broke.
    """
    comment = request.form.get("comment", "").strip()
    if not comment:
        flash(_("Escriba un comentario: qué cambia y por qué."), "error")
        return redirect(url_for("designer.index"))
    files = [d.file_name for d in list_drafts(db.session())]
    override = request.form.get("override_reason", "").strip()
    try:
        checked = files and current_app.config["DESIGNER_VERIFY_BEFORE_DEPLOY"]
        report, _files = verify_drafts(db.session(), settings_of(current_app.config)) if checked else (None, [])
    except DefinitionError:
        report = None  # the deploy below refuses the drafts and lists their problems
    if report is not None and not report.ok:
        broken = [f.invariant_id for f in report.findings]
        if not override:
            audit_apart("definition.deploy", object_type="draft", outcome="refused",
                        detail={"files": files, "broken": broken})
            return render_template("designer/index.html", groups=queries.overview(db.session()),
                                   drafts=list_drafts(db.session()), verification=report, comment=comment), 422
        audit(db.session(), "definition.deploy_override", object_type="draft",
              detail={"files": files, "broken": broken, "reason": override[:2000], "comment": comment[:2000],
                      "histories": report.histories})
    try:
        result = deploy_drafts(db.session(), actor=current_user.username, now=clock.now(), comment=comment[:2000])
    except DefinitionError as exc:  # the override's audit goes with the refused deploy
        audit_apart("definition.deploy", object_type="definition", outcome="failed",
                    detail={"files": files, "problems": len(exc.problems)})
        return render_template("designer/index.html", groups=queries.overview(db.session()),
                               drafts=list_drafts(db.session()), problems=exc.problems, comment=comment), 422
    for definition in result.created:
        audit(db.session(), "definition.deploy", object_type="definition", object_id=definition.id,
              detail={"kind": definition.kind, "key": definition.key, "version": definition.version,
                      "file": definition.file_name})
    if not result.created:  # the drafts matched the deployed versions: they are gone, nothing new
        audit(db.session(), "definition.deploy", object_type="draft", detail={"files": files, "created": 0})
    created = ", ".join(f"{d.key} v{d.version}" for d in result.created) or _("ninguna (sin cambios)")
    flash(_("Desplegado. Versiones nuevas: %(versions)s.", versions=created), "info")
    return redirect(url_for("designer.index"))


@bp.get("/<kind>/<key>/cambios")
def changes(kind: str, key: str) -> ResponseReturnValue:
    """Show what changed between two versions of a definition (elements, rules, form fields)."""
    before, after = parse_id(request.args.get("de")), parse_id(request.args.get("a"))
    if kind not in CONTENT_TYPES or before is None or after is None:
        abort(404)
    pair = queries.version_pair(db.session(), kind, key, before, after)
    if pair is None:
        abort(404)
    found = diff_definitions(kind, pair[0].source, pair[1].source)
    return render_template("designer/changes.html", before=pair[0], after=pair[1], changes=found)


@bp.get("/versiones/<id:definition_id>/descargar")
def download(definition_id: int) -> ResponseReturnValue:
    """Download one deployed version as the file it was deployed from."""
    definition = db.session.get(Definition, definition_id)
    if definition is None:
        abort(404)
    audit(db.session(), "definition.download", object_type="definition", object_id=definition.id,
          detail={"key": definition.key, "version": definition.version})
    return Response(definition.source.encode("utf-8"), mimetype=CONTENT_TYPES[definition.kind],
                    headers={"Content-Disposition": f'attachment; filename="{definition.file_name}"'})


@bp.post("/subir")
@accepts_upload
def upload() -> ResponseReturnValue:
    """Upload a .bpmn, .dmn or .json file (from another modeller): checked whole, then the draft of its file."""
    uploaded = request.files.get("file")
    if uploaded is None or not uploaded.filename:
        flash(_("Elija un archivo .bpmn, .dmn o .json."), "error")
        return redirect(url_for("designer.index"))
    content = uploaded.stream.read(UPLOAD_LIMIT + 1)
    name = uploaded.filename
    try:
        if len(content) > UPLOAD_LIMIT:
            raise DefinitionError([Problem(file=name, message="refused: the file is larger than 5 MB")])
        if name.lower().endswith(".json") and too_deep(content):
            raise DefinitionError([Problem(file=name, message=f"refused: nested deeper than {MAX_JSON_DEPTH} levels")])
        draft = upload_file(db.session(), name, content, expected_version=posted_int("version"),
                            actor=current_user.username, now=clock.now())
    except (DefinitionError, ConflictError) as exc:
        problems = exc.problems if isinstance(exc, DefinitionError) else [Problem(
            file=name, message="a draft of this file exists: open it and save, or discard it first")]
        audit_apart("definition.upload", object_type="draft", outcome="failed",
                    detail={"file": Path(name).name[:200], "problems": len(problems)})
        return render_template("designer/index.html", groups=queries.overview(db.session()),
                               drafts=list_drafts(db.session()), upload_problems=problems), 422
    audit(db.session(), "definition.upload", object_type="draft", object_id=draft.id,
          detail={"file": draft.file_name, "version": draft.row_version})
    flash(_("Archivo subido como borrador de %(file)s: revíselo, valídelo y despliéguelo.", file=draft.file_name),
          "info")
    return redirect(url_for("designer.edit", file_name=draft.file_name))


@bp.get("/vendor/<package>/<path:filename>")
def vendor(package: str, filename: str) -> ResponseReturnValue:
    """Serve the modellers (bpmn-js, dmn-js) and bpmn-js's Spanish translation from node_modules."""
    if package not in VENDOR:
        abort(404)
    return send_from_directory(VENDOR[package], filename, max_age=86400)


# --- Helpers ------------------------------------------------------------------------------------
def _file_name_or_404(file_name: str) -> str:
    try:
        return check_file_name(file_name)
    except DefinitionError:
        abort(404)


def _problems(problems: list[Problem]) -> list[dict[str, Any]]:
    return ProblemOut(many=True).dump(problems)  # type: ignore[no-any-return]


def _json_error(status: int, message: str, **extra: Any) -> ResponseReturnValue:
    return jsonify(error={"status": status, "message": message, **extra}), status


def _too_deep_error() -> ResponseReturnValue:
    """Refuse a JSON definition nested deeper than the limit (the parsers and checks recurse)."""
    return _json_error(422, str(depth_message()), fields={"content": [str(depth_message())]})
