"""Multi-factor sign-in: TOTP (RFC 6238) enrolment and checks, recovery codes, and who must use it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.models import Agency, MfaRecoveryCode, MfaRolePolicy, UserAccount, UserMfa
from engine.models.user import ROLES
from webapp.audit import audit
from webapp.auth.passwords import hash_password, verify_password
from webapp.auth.principal import COORDINATOR_KIND
from webapp.auth.throttle import account_wait

ISSUER = "Coordina"
RECOVERY_CODE_COUNT = 10
# What a policy is set for: each role, and the members of a Mesa's coordination agency ("coordinator").
COORDINATOR = "coordinator"
POLICY_ROLES = (*ROLES, COORDINATOR)
DEFAULT_REQUIRED_ROLES = "supervisor,coordinator,designer,admin"  # in production (not in testing)
VALID_WINDOW = 1  # codes of the current 30-second step and the one before and after are accepted


def parse_roles(text: str) -> frozenset[str]:
    """Read a comma-separated list of policy roles (COORDINA_REQUIRE_MFA_ROLES), ignoring unknown names."""
    return frozenset(name.strip() for name in text.split(",")) & frozenset(POLICY_ROLES)


def required_roles(session: Session, defaults: frozenset[str]) -> frozenset[str]:
    """Return the roles whose users must use MFA: the administrator's settings over the configured defaults."""
    chosen = {role: required for role, required in session.execute(select(MfaRolePolicy.role, MfaRolePolicy.required))}
    return frozenset(role for role in POLICY_ROLES if chosen.get(role, role in defaults))


def set_role_policy(session: Session, role: str, required: bool, *, now: datetime) -> None:
    """Record whether users of `role` must use MFA (audited)."""
    if role not in POLICY_ROLES:
        raise ValueError(f"unknown role {role!r}")
    policy = session.get(MfaRolePolicy, role)
    if policy is None:
        session.add(MfaRolePolicy(role=role, required=required, changed_at=now))
    else:
        policy.required, policy.changed_at = required, now
    audit(session, "mfa.policy", object_type="role", detail={"role": role, "required": required}, now=now)


def mfa_required(session: Session, user: UserAccount, defaults: frozenset[str]) -> bool:
    """Tell whether `user` must sign in with a second factor (an exempt user never must)."""
    record = session.get(UserMfa, user.id)
    if record is not None and record.exempt:
        return False
    kind = session.execute(select(Agency.kind).where(Agency.id == user.agency_id)).scalar_one_or_none()
    held = set(user.roles or []) | ({COORDINATOR} if kind == COORDINATOR_KIND else set())
    return bool(held & required_roles(session, defaults))


def is_enrolled(session: Session, user_id: int) -> bool:
    """Tell whether the user has a confirmed second factor."""
    record = session.get(UserMfa, user_id)
    return record is not None and record.secret is not None


def mark_exempt(session: Session, user_ids: Iterable[int]) -> None:
    """Exempt users from any MFA requirement (the demo's synthetic accounts)."""
    for user_id in user_ids:
        _record(session, user_id).exempt = True


def start_enrolment(session: Session, user_id: int, key: str) -> str:
    """Return the secret being enrolled (a new random one unless enrolment is already under way)."""
    record = _record(session, user_id)
    if record.pending_secret is not None:
        pending = _decrypt(key, record.pending_secret)
        if pending is not None:
            return pending
    secret = pyotp.random_base32()
    record.pending_secret = _encrypt(key, secret)
    return secret


def enrolment_qr_svg(secret: str, username: str) -> str:
    """Draw the otpauth:// address of `secret` as an inline SVG QR code (no script, nothing fetched)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    return str(segno.make(uri, error="m").svg_inline(scale=4, title="QR"))


def confirm_enrolment(session: Session, user_id: int, code: str, key: str, *, now: datetime) -> list[str] | None:
    """Confirm the pending secret with a current code: it replaces any earlier one; return new recovery codes."""
    record = _record(session, user_id)
    pending = _decrypt(key, record.pending_secret) if record.pending_secret else None
    step = _matching_step(pending, code, now, after=0) if pending else None
    if step is None:
        return None
    record.secret, record.pending_secret, record.enrolled_at, record.last_step = record.pending_secret, None, now, step
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(MfaRecoveryCode(user_id=user_id, code_hash=hash_password(_normal(c))) for c in codes)
    audit(session, "mfa.enrol", object_type="user", object_id=user_id, now=now)
    return codes


def check_second_factor(session: Session, user_id: int, code: str, key: str, *, now: datetime) -> bool:
    """Accept a current TOTP code not used before, or an unused recovery code (then used up)."""
    record = session.get(UserMfa, user_id, with_for_update=True)  # two requests with one code: one wins
    secret = _decrypt(key, record.secret) if record is not None and record.secret else None
    if record is None or secret is None:
        return False
    digits = code.strip().replace(" ", "")
    if digits.isascii() and digits.isdigit() and len(digits) == 6:  # recovery codes have 8 characters
        step = _matching_step(secret, digits, now, after=record.last_step)
        if step is None:
            return False
        record.last_step, record.failed_codes = step, 0
        return True
    if _use_recovery_code(session, user_id, code, now=now):
        record.failed_codes = 0
        return True
    return False


def token_refusal(session: Session, user: UserAccount, code: str | None, key: str, *, defaults: frozenset[str],
                  now: datetime) -> str | None:
    """Say why an API token cannot be issued on a password alone (None: it can): a code is missing or wrong,
    or the user must first enrol on the web."""
    if is_enrolled(session, user.id):
        return None if code and check_second_factor(session, user.id, code, key, now=now) else "second_factor"
    return "mfa_enrolment_required" if mfa_required(session, user, defaults) else None


def record_second_factor_failure(session: Session, user_id: int, *, now: datetime) -> None:
    """Count a wrong second factor like a wrong password: toward the account's lock-out (audited).

    Wrong codes are also counted apart, since the right password clears the account's count: once too many
    have been given, each further wrong code locks the account again until a right code is given.
    """
    user = session.get(UserAccount, user_id)
    if user is None:
        return
    record = _record(session, user_id)
    record.failed_codes += 1
    user.failed_logins += 1
    wait = account_wait(max(user.failed_logins, record.failed_codes))  # the account's back-off (throttle.py)
    if wait:
        user.locked_until = now + wait
    audit(session, "login", outcome="failed", user_id=user.id, username=user.username, agency_id=user.agency_id,
          now=now, detail={"step": "second_factor"})


def reset_mfa(session: Session, user: UserAccount, *, now: datetime) -> None:
    """Remove a user's second factor and recovery codes (an administrator's act, audited)."""
    record = _record(session, user.id)
    record.secret = record.pending_secret = record.enrolled_at = None
    record.last_step = 0
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    audit(session, "user.reset_mfa", object_type="user", object_id=user.id, now=now)


def _record(session: Session, user_id: int) -> UserMfa:
    record = session.get(UserMfa, user_id)
    if record is None:
        record = UserMfa(user_id=user_id, last_step=0, failed_codes=0, exempt=False)
        session.add(record)
    return record


def _matching_step(secret: str, code: str, now: datetime, *, after: int) -> int | None:
    """Return the time step (current ±1) whose code is `code`, if later than step `after`."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit()):  # compare_digest refuses other text; "²" is a digit too
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _use_recovery_code(session: Session, user_id: int, code: str, *, now: datetime) -> bool:
    unused = session.execute(
        select(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))
    ).scalars().all()
    for recovery in unused:
        if verify_password(recovery.code_hash, _normal(code)):
            recovery.used_at = now
            audit(session, "mfa.recovery_code", object_type="user", object_id=user_id, now=now,
                  detail={"left": len(unused) - 1})
            return True
    return False


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(5)).decode().lower()  # 40 random bits, 8 characters
    return f"{raw[:4]}-{raw[4:]}"


def _normal(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(b"coordina-mfa-secret:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _encrypt(key: str, secret: str) -> str:
    return _fernet(key).encrypt(secret.encode()).decode()


def _decrypt(key: str, token: str) -> str | None:
    try:
        return _fernet(key).decrypt(token.encode()).decode()
    except InvalidToken:  # the key changed since: the user must enrol again
        return None
