"""The deadline worker: one pass fires due timers, reminds and escalates tasks, checks the protocol's
invariants (the watchdog), delivers e-mail, and rolls the completed steps up for the supervisor's board.

Each step of a pass owns its transactions, a batch at a time (`unit_of_work`: committed when the
batch is done, rolled back if it fails), so a failure in one step neither undoes nor stops the
others, and several workers may run against one PostgreSQL database:
every step locks the rows it takes and skips the rows another worker holds.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

from sqlalchemy.orm import Session

from engine.deadlines import run_due_timers, run_escalations
from engine.invariants import current_invariants
from engine.notifications import Recipients
from engine.stats import ROLL_UP_BATCH, roll_up_step_timings
from engine.watchdog import current_violations, handle_violation
from webapp.notifications.emails import queue_emails
from webapp.notifications.mailer import SmtpSettings, deliver_outbox
from webapp.transaction import unit_of_work

log = logging.getLogger(__name__)

ESCALATION_BATCH = 500
EMAIL_BATCH = 100
# Batches of completions rolled up per pass: a large backlog (a migrated history) is spread over passes.
ROLL_UP_BATCHES = 10
# Violations handled per pass (each in its own transaction): a broken deploy's thousands are spread
# over passes, new ones first.
WATCHDOG_BATCH = 500


@dataclass
class PassReport:
    """What one pass of the deadline worker did."""

    fired: int = 0
    timers_failed: int = 0
    reminded: int = 0
    escalated: int = 0
    escalations_failed: int = 0
    notified: int = 0
    queued: int = 0
    sent: int = 0
    deferred: int = 0
    refused: int = 0
    rolled_up: int = 0
    violations: int = 0  # found by the watchdog (open episodes included)
    violations_recorded: int = 0  # of which new: written to the case history and told
    repaired: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """Tell whether the pass did anything worth a line in the log."""
        return any((self.fired, self.timers_failed, self.reminded, self.escalated, self.escalations_failed,
                    self.queued, self.sent, self.deferred, self.refused, self.rolled_up, self.violations,
                    self.repaired))

    def summary(self) -> str:
        """Return the pass in one line."""
        return (f"{self.fired} fired, {self.timers_failed} failed. {self.reminded} reminded, {self.escalated} "
                f"escalated, {self.escalations_failed} failed; {self.notified} notified. E-mail: {self.queued} "
                f"queued, {self.sent} sent, {self.deferred} deferred, {self.refused} refused. "
                f"{self.rolled_up} completions rolled up. Invariants: {self.violations} violations "
                f"({self.violations_recorded} new), {self.repaired} repaired.")


def run_pass(
    session: Session, now: datetime, *, smtp: SmtpSettings | None, base_url: str,
) -> PassReport:
    """Run one pass at `now`: timers, reminders and escalations (with their e-mails), the outbox, the roll-up.

    Without SMTP settings, notices stay in the app and no e-mail is queued or sent.
    """
    report = PassReport()
    _step(report, "timers", lambda: _timers(session, now, report))
    _step(report, "escalations", lambda: _escalations(session, now, report, smtp, base_url))
    _step(report, "watchdog", lambda: _watchdog(session, now, report, smtp, base_url))
    if smtp is not None:
        _step(report, "e-mail", lambda: _deliver(session, now, report, smtp))
    _step(report, "step timings", lambda: _roll_up(session, report))
    return report


def _step(report: PassReport, name: str, work: Callable[[], None]) -> None:
    """Run one step; its failed batch was rolled back by its unit of work, the batches before it are kept."""
    try:
        work()
    except Exception as exc:  # the worker must outlive a failing step; the next pass tries again
        report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        log.exception("deadline worker: the %s step failed", name)


def _timers(session: Session, now: datetime, report: PassReport) -> None:
    with unit_of_work(session):
        timers = run_due_timers(session, now)
    report.fired, report.timers_failed = timers.fired, timers.failed
    report.errors.extend(timers.errors)


def _escalations(
    session: Session, now: datetime, report: PassReport, smtp: SmtpSettings | None, base_url: str
) -> None:
    while True:
        with unit_of_work(session):
            batch = run_escalations(session, now, limit=ESCALATION_BATCH)
            if smtp is not None:
                report.queued += queue_emails(session, batch.notifications, base_url=base_url, now=now)
        report.reminded += batch.reminded
        report.escalated += batch.escalated
        report.escalations_failed += batch.failed
        report.notified += len(batch.notifications)
        report.errors.extend(batch.errors)
        if batch.taken < ESCALATION_BATCH:
            return


def _watchdog(
    session: Session, now: datetime, report: PassReport, smtp: SmtpSettings | None, base_url: str
) -> None:
    """Find broken invariants; record, tell and repair each in its own transaction."""
    with unit_of_work(session):
        invariants = current_invariants(session)
        found = current_violations(session, now, invariants)
    report.violations = len(found.violations)
    recipients = Recipients(session)
    for violation in found.to_handle[:WATCHDOG_BATCH]:
        try:
            with unit_of_work(session):
                with session.begin_nested():
                    handled = handle_violation(session, violation, invariants, now, recipients)
                if smtp is not None:
                    report.queued += queue_emails(session, handled.notifications, base_url=base_url, now=now)
        except Exception as exc:  # one case must not stop the others; the next pass finds it again
            report.errors.append(f"watchdog, case {violation.case_id}: {type(exc).__name__}: {exc}")
            log.warning("watchdog: case %s failed: %s", violation.case_id, type(exc).__name__)
            continue
        report.violations_recorded += int(handled.recorded)
        report.repaired += int(handled.repaired)
        report.notified += len(handled.notifications)
        if handled.error:
            report.errors.append(handled.error)


def _deliver(session: Session, now: datetime, report: PassReport, smtp: SmtpSettings) -> None:
    while True:
        with unit_of_work(session):
            batch = deliver_outbox(session, smtp, now, limit=EMAIL_BATCH)
        report.sent += batch.sent
        report.deferred += batch.deferred
        report.refused += batch.failed
        report.errors.extend(batch.errors)
        if batch.taken < EMAIL_BATCH or batch.deferred:
            return  # a server that defers now will not take the next batch either


def _roll_up(session: Session, report: PassReport, batches: int = ROLL_UP_BATCHES) -> None:
    for _ in range(batches):
        with unit_of_work(session):
            batch = roll_up_step_timings(session)
        report.rolled_up += batch.events
        if batch.events < ROLL_UP_BATCH:
            return


class Worker:
    """Run a pass every `interval` seconds until SIGTERM or SIGINT; a pass under way finishes first."""

    def __init__(self, run_once: Callable[[], None], interval: float) -> None:
        self._run_once = run_once
        self._interval = interval
        self._stopping = threading.Event()

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Ask the loop to end after the current pass (a second signal interrupts at once)."""
        if self._stopping.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM (systemd, kill) and SIGINT (Ctrl-C)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self) -> int:
        """Loop until stopped; return the number of passes run."""
        passes = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._run_once()
            except Exception:  # e.g. the database is restarting: log it and try again next time
                log.exception("deadline worker: the pass failed")
            passes += 1
            self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))
        return passes
