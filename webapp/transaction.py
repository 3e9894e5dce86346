"""The unit of work: who commits, and when.

- A web request owns its transaction. Views and helpers only add and flush; the response decides:
  a 2xx or 3xx answer commits, a 4xx or 5xx answer rolls back, and so does any exception (an error
  handler's answer is 4xx/5xx, and an unhandled exception skips the commit). A response's body is
  produced before the commit (templates render eagerly, files are read from disk, never from the
  session), so nothing a body streams later can be half-committed.
- What must survive the request's rollback (a refusal's audit, a failed sign-in's counters) is written
  `apart`: in its own short transaction on a separate session, after the request's own work is undone.
- A view that refuses a change and still answers 2xx/3xx (flash and redirect back) or re-renders the page
  from what is stored calls `discard()` first: what the operation wrote before refusing is undone, not
  committed by the redirect nor shown on the page. It is the one rollback a view may ask for; what the
  request does after it (an audit, a flash) is new work, kept or undone by the answer as usual.
- A CLI command or a worker batch owns its transaction with `unit_of_work(session)`; a check that must
  store nothing reads in a `read_only` one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response
from sqlalchemy.orm import Session

from webapp.extensions import db

# Answers below this status commit the request's work; the others roll it back.
FIRST_FAILURE_STATUS = 400


def init_transaction(app: Flask) -> None:
    """Make every request own its transaction: commit on 2xx/3xx, roll back on 4xx/5xx and exceptions."""
    app.after_request(_commit_or_roll_back)
    app.teardown_request(_roll_back_on_exception)


def _commit_or_roll_back(response: Response) -> Response:
    """End the request's transaction by its answer; a failed commit becomes a 500 (nothing was kept)."""
    if response.status_code < FIRST_FAILURE_STATUS:
        db.session.commit()
    else:
        db.session.rollback()
    return response


def _roll_back_on_exception(error: BaseException | None) -> None:
    """Undo the work of a request that ended in an unhandled exception (no response to judge by)."""
    if error is not None:
        db.session.rollback()


def discard() -> None:
    """Undo the request's work so far: a refused change leaves nothing behind, even if the answer commits."""
    db.session.rollback()


@contextmanager
def apart() -> Iterator[Session]:
    """Run a block in its own short transaction on a separate session, committed when the block ends.

    The request's own work is undone first: what is written apart is written because the request is
    being refused or failing (or has done nothing yet), and ending the request's transaction lets the
    separate session write (SQLite has one writer; PostgreSQL rows the request locked would block it).
    """
    db.session.rollback()
    with Session(db.engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """Own one transaction on `session` (a CLI command, a worker batch): commit at the end, roll back on error."""
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


@contextmanager
def read_only(session: Session) -> Iterator[Session]:
    """Run a check in a transaction that is always rolled back: nothing the block does is stored."""
    try:
        yield session
    finally:
        session.rollback()
