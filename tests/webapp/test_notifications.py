"""Notifications: the worker's notices and e-mails (through a real local SMTP server), the bell, preferences."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select, update

from engine.db import Base, make_engine
from engine.models import Notification, OutboxEmail, UserAccount
from tests.support.mail import Mailbox, free_port
from tests.support.protocol import detection
from tests.support.race import race
from tests.support.web import Site
from webapp import clock
from webapp.extensions import db
from webapp.notifications.mailer import SmtpSettings
from webapp.notifications.worker import Worker, run_pass

ROOT = Path(__file__).resolve().parents[2]
VICTIM = {"name": "Lucía Fernández Robles", "phone": "600 123 456"}
ADDRESSES = {"policia": "policia@gc.example", "policia.jefa": "jefa@gc.example"}  # policia2 has none
BASE_URL = "https://coordina.example"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A running local SMTP server."""
    box = Mailbox(free_port())
    box.start()
    yield box
    box.stop()


@pytest.fixture
def mail_site(site: Site, mailbox: Mailbox) -> Site:
    """The site sending e-mail to the local server; two police users have an address."""
    site.app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=mailbox.port, BASE_URL=BASE_URL,
                           MAIL_FROM="avisos@coordina.example")
    with site.app.app_context():
        for username, address in ADDRESSES.items():
            db.session.execute(update(UserAccount).where(UserAccount.username == username).values(email=address))
        db.session.commit()
    return site


def run(site: Site, when: datetime) -> Result:
    """Run `flask deadlines run --now WHEN` and check it succeeded."""
    result = site.app.test_cli_runner().invoke(args=["deadlines", "run", "--now", when.isoformat()])
    assert result.exit_code == 0, result.output
    return result


def notices(site: Site, username: str) -> list[tuple[str, str]]:
    """Return (step, kind) of a user's notices, oldest first."""
    with site.app.app_context():
        return [tuple(row) for row in db.session.execute(  # type: ignore[misc]
            select(Notification.step, Notification.kind).where(Notification.user_id == site.users[username])
            .order_by(Notification.id)).all()]


def outbox(site: Site) -> list[OutboxEmail]:
    with site.app.app_context():
        return list(db.session.execute(select(OutboxEmail).order_by(OutboxEmail.id)).scalars())


def open_police_case(site: Site, **detected: Any) -> tuple[int, datetime]:
    """Register a detection with a named victim; return the case and the police step's deadline."""
    case_id = site.open_case(detection(**detected), victim=VICTIM)
    site.settle_police_line(case_id)  # the complaint (or the urgent intervention) is the police step left
    task = site.task(case_id, URGENT if detected.get("immediate_danger") else STEP)
    assert task.due_at is not None
    return case_id, task.due_at


STEP, STEP_NAME = "police_report_to_court", "Recoger la denuncia y remitir el atestado al juzgado"
URGENT = "urgent_police_intervention"


# --- The worker pass and e-mail ---------------------------------------------------------------------
def test_an_overdue_step_is_mailed_to_its_agency_at_the_deadline_without_personal_data(
    mail_site: Site, mailbox: Mailbox
) -> None:
    case_id, due = open_police_case(mail_site)
    task = mail_site.task(case_id, STEP)
    assert due == mail_site.clock.now() + timedelta(hours=24)

    early = run(mail_site, due - timedelta(seconds=1))
    assert "0 escalated" in early.output
    assert mailbox.messages == []

    late = run(mail_site, due)
    assert "1 escalated" in late.output
    assert "2 sent" in late.output  # policia and her supervisor; policia2 has no address
    assert notices(mail_site, "policia2") == [(STEP_NAME, "agency")]
    [message] = mailbox.to(ADDRESSES["policia"])
    reference = re.search(r"VG-\d{4}-\d{6}", message["Subject"])
    assert reference is not None
    assert STEP_NAME in message["Subject"]
    body = message.get_content()
    assert reference.group(0) in body
    assert STEP_NAME in body
    assert f"{BASE_URL}/tareas/{task.id}" in body
    assert message["From"] == "avisos@coordina.example"
    everything = message.as_string()
    for secret in (*VICTIM.values(), "Lucía", "Fernández", "Lesiones compatibles"):
        assert secret not in everything
        assert secret not in body
    assert [(e.status, e.attempts) for e in outbox(mail_site)] == [("sent", 1)] * 2

    assert "0 escalated" in run(mail_site, due + timedelta(hours=1)).output  # nothing twice
    assert len(mailbox.messages) == 2


def test_an_urgent_police_step_reaches_the_supervisor_and_the_mesa_sooner(mail_site: Site, mailbox: Mailbox) -> None:
    with mail_site.app.app_context():
        mesa = UserAccount(username="mesa", display_name="Mesa (prueba)", roles=["professional"], active=True,
                           agency_id=mail_site.agencies[("mesa_coordinator", "here")], email="mesa@coordina.example",
                           failed_logins=0, session_generation=1, language="en")
        db.session.add(mesa)
        db.session.commit()
    case_id, due = open_police_case(mail_site, immediate_danger=True)
    assert due == mail_site.clock.now() + timedelta(hours=1)
    run(mail_site, due)
    run(mail_site, due + timedelta(hours=1) - timedelta(seconds=1))
    assert [k for _, k in notices(mail_site, "policia.jefa")] == ["agency"]
    run(mail_site, due + timedelta(hours=1))  # the model's escalateSupervisorAfter: one hour, not a day
    assert [k for _, k in notices(mail_site, "policia.jefa")] == ["agency", "supervisor"]
    assert [k for _, k in notices(mail_site, "policia")] == ["agency"]  # a professional is not told twice
    [supervised] = [m for m in mailbox.to(ADDRESSES["policia.jefa"]) if "sin atender" in m["Subject"]]
    assert "Intervención policial urgente" in supervised["Subject"]
    run(mail_site, due + timedelta(hours=4) - timedelta(seconds=1))
    assert mailbox.to("mesa@coordina.example") == []
    run(mail_site, due + timedelta(hours=4))
    [to_mesa] = mailbox.to("mesa@coordina.example")
    assert "Overdue step, Mesa alerted" in to_mesa["Subject"]  # in her language
    assert f"{BASE_URL}/casos/{case_id}" in to_mesa.get_content()  # the Mesa gets the case page


def test_an_smtp_server_that_is_down_delays_mail_without_losing_it(mail_site: Site, mailbox: Mailbox) -> None:
    _, due = open_police_case(mail_site)
    mailbox.stop()
    result = run(mail_site, due)
    assert "2 deferred" in result.output
    pending = outbox(mail_site)
    assert {(e.status, e.attempts, e.next_attempt_at) for e in pending} == {("pending", 1, due + timedelta(minutes=1))}
    assert all(e.last_error for e in pending)
    assert "@" not in result.output  # no address in the command's output or logs

    run(mail_site, due + timedelta(seconds=30))  # still down, and not due yet
    assert {(e.attempts, e.next_attempt_at) for e in outbox(mail_site)} == {(1, due + timedelta(minutes=1))}
    run(mail_site, due + timedelta(minutes=1))  # still down: the wait doubles
    assert {(e.attempts, e.next_attempt_at) for e in outbox(mail_site)} == {(2, due + timedelta(minutes=3))}

    mailbox.start()
    run(mail_site, due + timedelta(minutes=2))
    assert mailbox.messages == []
    result = run(mail_site, due + timedelta(minutes=3))
    assert "2 sent" in result.output
    assert {(e.status, e.attempts, e.sent_at) for e in outbox(mail_site)} == {("sent", 3, due + timedelta(minutes=3))}
    run(mail_site, due + timedelta(hours=1))
    assert len(mailbox.messages) == 2  # exactly once each
    assert {m["To"] for m in mailbox.messages} == set(ADDRESSES.values())


def test_with_email_off_the_notice_stays_in_the_app(mail_site: Site, mailbox: Mailbox) -> None:
    browser = mail_site.browser("policia")
    page = browser.get("/avisos/preferencias").get_data(as_text=True)
    assert ADDRESSES["policia"] in page
    assert 'id="email_agency" name="email_agency" checked' in page
    saved = browser.post("/avisos/preferencias", {"email_reminder": "on", "email_supervisor": "on"})
    assert saved.status_code == 302
    page = browser.get("/avisos/preferencias").get_data(as_text=True)
    assert 'id="email_agency" name="email_agency">' in page
    assert 'id="email_reminder" name="email_reminder" checked' in page

    _, due = open_police_case(mail_site)
    run(mail_site, due)
    assert mailbox.to(ADDRESSES["policia"]) == []
    assert len(mailbox.to(ADDRESSES["policia.jefa"])) == 1
    assert notices(mail_site, "policia") == [(STEP_NAME, "agency")]


def test_a_user_without_address_and_a_site_without_smtp_get_notices_in_the_app_only(site: Site) -> None:
    _, due = open_police_case(site)
    result = run(site, due)  # no SMTP_HOST configured: e-mail is off
    assert "0 queued" in result.output
    assert outbox(site) == []
    assert notices(site, "policia") == [(STEP_NAME, "agency")]
    assert notices(site, "policia2") == [(STEP_NAME, "agency")]
    page = site.browser("policia2").get("/avisos/preferencias").get_data(as_text=True)
    assert "no tiene dirección de correo electrónico" in page


def test_two_workers_at_once_send_each_mail_once(mail_site: Site, mailbox: Mailbox) -> None:
    for _ in range(3):
        _, due = open_police_case(mail_site)

    def worker(go: Callable[[], None]) -> None:
        with mail_site.app.app_context():
            smtp = SmtpSettings.from_config(mail_site.app.config)
            go()
            report = run_pass(db.session(), due + timedelta(days=3), smtp=smtp, base_url=BASE_URL)
            assert report.errors == []

    race(worker, worker)
    with mail_site.app.app_context():
        per_user = dict(db.session.execute(
            select(Notification.user_id, func.count()).group_by(Notification.user_id)).all())
    assert per_user[mail_site.users["policia"]] == 3  # the agency level of three cases
    assert per_user[mail_site.users["policia.jefa"]] == 6  # the agency and supervisor levels
    subjects = [(m["To"], m["Subject"]) for m in mailbox.messages]
    assert len(subjects) == len(set(subjects)) == 9
    assert len(outbox(mail_site)) == 9


# --- The bell and the list ----------------------------------------------------------------------------
def bell_count(html: str) -> int:
    match = re.search(r'class="bell"[^>]*data-unread="(\d+)"', html)
    assert match, "the page has the bell"
    return int(match.group(1))


def test_the_bell_counts_unread_notices_and_the_list_leads_to_the_task(site: Site) -> None:
    open_police_case(site)
    site.clock.advance(timedelta(minutes=5))
    _, due = open_police_case(site)
    browser = site.browser("policia")
    assert bell_count(browser.get("/").get_data(as_text=True)) == 0
    run(site, due)
    home = browser.get("/").get_data(as_text=True)
    assert bell_count(home) == 2
    assert '<span class="count">2<span class="visually-hidden"> sin leer</span></span>' in home

    listing = browser.get("/avisos").get_data(as_text=True)
    assert listing.count("Nuevo</span> Paso vencido</td>") == 2
    assert listing.count(STEP_NAME) == 2
    with site.app.app_context():
        mine = list(db.session.execute(select(Notification).where(Notification.user_id == site.users["policia"])
                                       .order_by(Notification.id)).scalars())
    newest_first = [m.id for m in sorted(mine, key=lambda n: (n.created_at, n.id), reverse=True)]
    assert [int(i) for i in re.findall(r'data-notification="(\d+)"', listing)] == newest_first
    opened = browser.get(f"/avisos/{mine[0].id}")
    assert opened.status_code == 302
    assert opened.headers["Location"] == f"/tareas/{mine[0].task_id}"
    assert bell_count(browser.get("/avisos").get_data(as_text=True)) == 1

    browser.post(f"/avisos/{mine[1].id}/leido", {"next": "/avisos"})
    page = browser.get("/avisos").get_data(as_text=True)
    assert bell_count(page) == 0
    assert "Marcar todos como leídos" not in page


def test_mark_all_read_empties_the_bell(site: Site) -> None:
    open_police_case(site)
    _, due = open_police_case(site)
    run(site, due)
    browser = site.browser("policia.jefa")
    assert bell_count(browser.get("/avisos").get_data(as_text=True)) == 2
    done = browser.post("/avisos/leidos", {"next": "/avisos"})
    assert done.status_code == 302
    page = browser.get("/avisos").get_data(as_text=True)
    assert "2 avisos marcados como leídos." in page
    assert bell_count(page) == 0


def test_someone_elses_notice_is_not_found(site: Site) -> None:
    _, due = open_police_case(site)
    run(site, due)
    with site.app.app_context():
        theirs = db.session.execute(select(Notification.id).where(
            Notification.user_id == site.users["policia2"])).scalars().first()
    browser = site.browser("policia")
    assert browser.get(f"/avisos/{theirs}").status_code == 404
    assert browser.post(f"/avisos/{theirs}/leido").status_code == 404
    assert bell_count(site.browser("policia2").get("/").get_data(as_text=True)) == 1


def test_the_bell_is_only_shown_to_signed_in_users(site: Site) -> None:
    page = site.browser().get("/login").get_data(as_text=True)
    assert 'class="bell"' not in page
    assert site.browser().get("/avisos").status_code == 302


def test_the_case_history_names_each_escalation_level(site: Site) -> None:
    case_id, due = open_police_case(site)
    run(site, due)
    page = site.browser("policia").get(f"/casos/{case_id}").get_data(as_text=True)
    assert page.count(f"Paso vencido: avisado su organismo: {STEP_NAME}") == 1
    assert "Paso escalado a la supervisión" not in page

    run(site, due + timedelta(days=3))  # past the supervisor's (P1D) and the Mesa's (P2D) periods
    page = site.browser("policia").get(f"/casos/{case_id}").get_data(as_text=True)
    history = page.split('<h2 id="history-title">Historial</h2>')[1].split("</section>")[0]
    labels = ["Paso escalado a la coordinación de la Mesa", "Paso escalado a la supervisión del organismo",
              "Paso vencido: avisado su organismo"]  # newest first
    positions = [history.index(f"{label}: {STEP_NAME}") for label in labels]
    assert positions == sorted(positions)


def test_the_english_bell_and_list(site: Site) -> None:
    _, due = open_police_case(site)
    run(site, due)
    browser = site.browser("policia")
    browser.post("/language", {"language": "en", "next": "/avisos"})
    page = browser.get("/avisos").get_data(as_text=True)
    assert "Overdue step" in page
    assert "unread" in page


# --- The worker loop ------------------------------------------------------------------------------------
def test_the_worker_loop_runs_passes_until_stopped() -> None:
    passes: list[int] = []

    def run_once() -> None:
        passes.append(1)
        if len(passes) == 3:
            worker.stop()

    worker = Worker(run_once, interval=0.01)
    assert worker.run() == 3


def test_a_failing_pass_does_not_stop_the_worker() -> None:
    calls: list[int] = []

    def run_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        worker.stop()

    worker = Worker(run_once, interval=0.01)
    assert worker.run() == 2


def test_flask_deadlines_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'worker.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    env = {**os.environ, "COORDINA_DATABASE_URL": url, "COORDINA_SECRET_KEY": "test-only"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "webapp", "deadlines", "worker", "--interval", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "Deadline worker started" in first, first
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "Deadline worker stopped after" in output
    assert "Traceback" not in output


def test_deadlines_run_uses_the_app_clock(site: Site) -> None:
    _, due = open_police_case(site)
    site.clock.set(due)
    result = site.app.test_cli_runner().invoke(args=["deadlines", "run"])
    assert result.exit_code == 0, result.output
    assert "1 escalated" in result.output
    with site.app.app_context():
        assert clock.now() == due
