"""The registry: patients, visits and assessments kept with SQLAlchemy, every change audited.

A SQLite file by default, PostgreSQL by URL (``postgresql+psycopg://...``). The schema comes
from Alembic migrations (:func:`migrate`). Every write is one transaction: a failure midway,
or a killed process, leaves nothing half written. Importing the same FHIR Bundle twice changes
nothing. Roles: ``clinician`` (read and write, identified) and ``researcher`` (read only,
de-identified: a pseudonym instead of the record id, no birth date, no free text, dates cut to
the month).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import create_engine, delete, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from imnm import __version__
from imnm.assessment import assess
from imnm.errors import ImnmError
from imnm.fhir import from_bundle
from imnm.patient import Patient, Visit, load_patient
from imnm.registry.deidentify import strip_free_text
from imnm.registry.models import (
    AssessmentRecord,
    AuditEntry,
    ImportRecord,
    PatientRecord,
    SessionRecord,
    Setting,
    User,
    VisitRecord,
    utcnow,
)

T = TypeVar("T")
Role = Literal["clinician", "researcher"]
ROLES: tuple[Role, ...] = ("clinician", "researcher")


class RegistryError(ImnmError):
    """A registry operation was refused (names why, never patient data)."""


class Forbidden(RegistryError):
    """The user's role does not allow this."""


@dataclass(frozen=True)
class Account:
    """A logged-in user."""

    username: str
    role: Role


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _kind, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = _hash_password(password, bytes.fromhex(salt)).split("$")[2]
    return hmac.compare_digest(candidate, digest)


LOCK_AFTER_FAILURES = 5
"""Wrong passwords in a row that lock an account (operational, OWASP's usual order)."""
LOCK_SECONDS = 15 * 60
"""How long a locked account stays locked."""
_DUMMY_HASH = _hash_password("imnm: a password nobody has")  # unknown users cost the same


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the latest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("imnm.registry") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


SCHEMA_HEAD = "0002"
"""The schema revision this version of imnm reads and writes (the newest migration)."""


def schema_problem(url: str) -> str | None:
    """Why the registry at ``url`` cannot be used as it is (no schema, an older or a newer
    one), naming what to run; None when it is ready. Never creates anything."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return f"no registry database at {url}: run `imnm registry init --url {url}`"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return (f"the database at {url} has no imnm registry schema: run "
                        f"`imnm registry init --url {url}`")
            version = connection.execute(text("SELECT version_num FROM alembic_version")
                                         ).scalar()
    except SQLAlchemyError as exc:
        return f"cannot open the registry database ({type(exc).__name__})"
    finally:
        engine.dispose()
    if version != SCHEMA_HEAD:
        return (f"the registry's schema is revision {version}; this imnm needs {SCHEMA_HEAD}: "
                f"run `imnm registry init --url {url}` (it upgrades in place)")
    return None


def _sqlite_pragmas(engine: Engine) -> None:
    """Foreign keys, WAL, and every transaction taking SQLite's write lock at its start
    (``BEGIN IMMEDIATE``), so a read-change-write never interleaves with another writer's."""

    @event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # pysqlite: let SQLAlchemy's begin() below decide
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


LOCK_WAIT_SECONDS = 30.0
"""How long a writer waits for another writer's lock before giving up (SQLite's busy timeout,
PostgreSQL's lock_timeout). Operational, not clinical."""

RETRIES = 5
"""How many times a write that lost a race (a unique key taken meanwhile, a serialization
failure) is re-run from the start, reading again what the other writer committed."""


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _month(value: object) -> object:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value[:7]
    return value


class Registry:
    """The registry at one database URL."""

    def __init__(self, url: str, *, secret: str | None = None) -> None:
        """``secret``: the researchers' pseudonym key; by default the one kept in the
        registry."""
        self.url = url
        if url.startswith("sqlite"):
            self.engine = create_engine(url, future=True,
                                        connect_args={"timeout": LOCK_WAIT_SECONDS})
            _sqlite_pragmas(self.engine)
        else:
            self.engine = create_engine(url, future=True, connect_args={
                "options": f"-c lock_timeout={int(LOCK_WAIT_SECONDS * 1000)}"})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._secret = secret.encode() if secret else None

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def _write_retrying(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; if it lost a race with another writer (a unique
        key inserted meanwhile, a deadlock or serialization failure), run it again from the
        start, so it reads what the other writer committed. Nothing is half written."""
        for attempt in range(RETRIES):
            try:
                with self._transaction() as session:
                    return work(session)
            except (IntegrityError, OperationalError) as error:
                if attempt == RETRIES - 1 or not _lost_race(error):
                    raise
                time.sleep(0.01 * (attempt + 1) * (1 + secrets.randbelow(10)))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _locked(session: Session, record_id: str) -> PatientRecord | None:
        """The child's row, locked until the transaction ends (``SELECT ... FOR UPDATE``;
        SQLite's transactions already hold the database's write lock)."""
        return session.scalar(select(PatientRecord).where(
            PatientRecord.record_id == record_id).with_for_update())

    def _audit(self, session: Session, account: Account, action: str, record_id: str | None,
               what: str) -> None:
        session.add(AuditEntry(username=account.username, action=action, record_id=record_id,
                               what=what, at=utcnow()))

    # ------------------------------------------------------------------ users

    def create_user(self, username: str, password: str, role: Role) -> Account:
        """Add a user (passwords kept as scrypt hashes)."""
        if role not in ROLES:
            raise RegistryError(f"role: expected one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise RegistryError("password: expected at least 8 characters")
        password_hash = _hash_password(password)

        def work(session: Session) -> None:
            if session.scalar(select(User).where(User.username == username)) is not None:
                raise RegistryError(f"username: {username!r} exists already")
            session.add(User(username=username, password_hash=password_hash,
                             role=role, created_at=utcnow()))
            self._audit(session, Account("system", "clinician"), "create_user", None,
                        f"user {username} ({role})")

        self._write_retrying(work)
        return Account(username, role)

    def login(self, username: str, password: str) -> Account | None:
        """The account, if the password matches and the account is not locked.

        An unknown user name costs the same scrypt as a known one, so timing does not tell
        which names exist. After :data:`LOCK_AFTER_FAILURES` wrong passwords in a row the
        account is locked for :data:`LOCK_SECONDS` (the right password included); every
        refusal looks the same to the caller.
        """
        def work(session: Session) -> Account | None:
            user = session.scalar(select(User).where(User.username == username
                                                     ).with_for_update())
            matches = _check_password(password, user.password_hash if user is not None
                                      else _DUMMY_HASH)
            if user is None:
                return None
            now = utcnow()
            if user.locked_until is not None and _aware(user.locked_until) > now:
                return None
            if not matches:
                user.failed_logins = (user.failed_logins or 0) + 1
                if user.failed_logins >= LOCK_AFTER_FAILURES:
                    user.locked_until = now + dt.timedelta(seconds=LOCK_SECONDS)
                    user.failed_logins = 0
                    self._audit(session, Account(username, "clinician"), "lock", None,
                                f"user {username}: {LOCK_AFTER_FAILURES} wrong passwords")
                return None
            user.failed_logins, user.locked_until = 0, None
            return Account(user.username, user.role)  # type: ignore[arg-type]

        return self._write_retrying(work)

    # ------------------------------------------------------------------ web sessions

    def open_session(self, account: Account, seconds: int) -> tuple[str, str]:
        """A new web session: (token for the cookie, CSRF token for the forms). Only the
        token's SHA-256 is stored; expired sessions are purged."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        with self._transaction() as session:
            session.execute(delete(SessionRecord).where(SessionRecord.expires_at < now))
            session.add(SessionRecord(token_sha256=_sha256(token), username=account.username,
                                      role=account.role, csrf=csrf, created_at=now,
                                      expires_at=now + dt.timedelta(seconds=seconds)))
        return token, csrf

    def session(self, token: str) -> tuple[Account, str] | None:
        """The account and CSRF token of a live session, or None."""
        if not token or len(token) > 128:
            return None
        with self._sessions() as session:
            record = session.scalar(select(SessionRecord).where(
                SessionRecord.token_sha256 == _sha256(token)))
        if record is None or _aware(record.expires_at) < utcnow():
            return None
        return Account(record.username, record.role), record.csrf  # type: ignore[arg-type]

    def close_session(self, token: str) -> None:
        """End a session (logout): the cookie no longer opens anything."""
        with self._transaction() as session:
            session.execute(delete(SessionRecord).where(
                SessionRecord.token_sha256 == _sha256(token)))

    # ------------------------------------------------------------------ patients

    @staticmethod
    def _require_clinician(account: Account) -> None:
        if account.role != "clinician":
            raise Forbidden("this action needs the clinician role")

    def save_patient(self, patient: Patient, account: Account, *,
                     _between: Callable[[], None] | None = None) -> None:
        """Create or update a child, visits included, in one transaction, audited."""
        self._require_clinician(account)
        data = patient.model_dump(mode="json", exclude={"visits"}, exclude_none=True)
        self._write_retrying(
            lambda session: self._write(session, patient, data, account, _between))

    def _write(self, session: Session, patient: Patient, data: dict[str, Any],
               account: Account, between: Callable[[], None] | None) -> None:
        record = self._locked(session, patient.id)
        if record is None:
            record = PatientRecord(record_id=patient.id, data=data, created_at=utcnow(),
                                   updated_at=utcnow())
            session.add(record)
            self._audit(session, account, "create", patient.id,
                        "fields: " + ", ".join(sorted(data)))
        else:
            changed = _changed(record.data, data)
            record.data = data
            record.updated_at = utcnow()
            self._audit(session, account, "update", patient.id,
                        "fields: " + (", ".join(changed) or "none"))
        session.flush()
        if between is not None:
            between()  # tests: fail or pause between the patient and its visits
        visits = [v.model_dump(mode="json", exclude_none=True) for v in patient.visits]
        if [v.data for v in record.visits] != visits:
            record.visits.clear()
            session.flush()
            for visit in patient.visits:
                record.visits.append(VisitRecord(
                    date=visit.date, data=visit.model_dump(mode="json", exclude_none=True)))
            self._audit(session, account, "visits", patient.id,
                        f"{len(patient.visits)} visit(s)")

    def add_visit(self, record_id: str, visit: Visit, account: Account) -> Patient:
        """Add one visit and return the child with it (validated as a whole)."""
        return self._append(record_id, "visits",
                            visit.model_dump(mode="json", exclude_none=True), account)

    def add_treatment(self, record_id: str, treatment: dict[str, Any], account: Account
                      ) -> Patient:
        """Add one treatment (as in a patient file) and return the child with it."""
        return self._append(record_id, "treatments", treatment, account)

    def _append(self, record_id: str, field: str, item: dict[str, Any], account: Account
                ) -> Patient:
        """Append ``item`` to the child's list ``field`` under the row lock, validating the
        child as a whole (InputError names the item's fields)."""
        self._require_clinician(account)

        def work(session: Session) -> Patient:
            record = self._locked(session, record_id)
            if record is None:
                raise RegistryError("record: not found")
            data = _loaded(record).model_dump(mode="json", exclude_none=True)
            data[field] = [*data.get(field, []), item]
            updated = load_patient(data)
            self._write(session, updated, updated.model_dump(
                mode="json", exclude={"visits"}, exclude_none=True), account, None)
            return updated

        return self._write_retrying(work)

    def import_bundle(self, bundle: dict[str, Any], account: Account, *,
                      _between: Callable[[], None] | None = None) -> tuple[str, bool]:
        """Import a FHIR Bundle once: (record id, whether anything was written)."""
        self._require_clinician(account)
        canonical = json.dumps(bundle, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        patient, _report = from_bundle(bundle)

        def work(session: Session) -> tuple[str, bool]:
            existing = self._locked(session, patient.id)  # first: serialises the importers
            if session.scalar(select(ImportRecord).where(
                    ImportRecord.bundle_sha256 == digest)) is not None:
                return patient.id, False
            data = patient.model_dump(mode="json", exclude={"visits"}, exclude_none=True)
            if existing is not None and "notes" in existing.data and "notes" not in data:
                data["notes"] = existing.data["notes"]  # FHIR never carries the notes
            self._write(session, patient, data, account, _between)
            session.add(ImportRecord(bundle_sha256=digest, record_id=patient.id,
                                     imported_at=utcnow()))
            self._audit(session, account, "import", patient.id, f"bundle sha256 {digest[:12]}")
            return patient.id, True

        # A concurrent import of the same Bundle that committed first makes this one's
        # insert fail on the unique key; the re-run finds its import and writes nothing.
        return self._write_retrying(work)

    def patient(self, record_id: str, account: Account) -> Patient:
        """One child, as the account may see it."""
        with self._sessions() as session:
            record = session.scalar(select(PatientRecord).where(
                PatientRecord.record_id == record_id))
            if record is None:
                raise RegistryError("record: not found")
            patient = _loaded(record)
        return patient if account.role == "clinician" else self.deidentify(patient)

    def record_ids(self) -> list[str]:
        """Every record id, sorted."""
        with self._sessions() as session:
            return sorted(session.scalars(select(PatientRecord.record_id)))

    def patients(self, account: Account) -> list[Patient]:
        """Every child, as the account may see them."""
        return [self.patient(r, account) for r in self.record_ids()]

    def _pseudonym_key(self) -> bytes:
        """The key researchers' pseudonyms are made with: the one given, else the one kept in
        the registry (made at first use), so pseudonyms are stable for the life of the study."""
        if self._secret is None:
            def work(session: Session) -> str:
                setting = session.get(Setting, "pseudonym_key", with_for_update=True)
                if setting is None:
                    setting = Setting(name="pseudonym_key", value=secrets.token_hex(32))
                    session.add(setting)
                return setting.value

            self._secret = self._write_retrying(work).encode()
        return self._secret

    def pseudonym(self, record_id: str) -> str:
        """A stable pseudonym for a record id (HMAC with the registry's pseudonym key)."""
        digest = hmac.new(self._pseudonym_key(), record_id.encode(), hashlib.sha256
                          ).hexdigest()
        return f"subject-{digest[:12]}"

    def deidentify(self, patient: Patient) -> Patient:
        """The researcher's view: pseudonym, no birth date (age kept), dates cut to the month,
        and no free text: every text field withheld or replaced by its category
        (:mod:`imnm.registry.deidentify`)."""
        data = strip_free_text(patient)
        age = patient.age_years_now()
        data.pop("birth_date", None)
        if age is not None:
            data["age_years"] = round(age, 1)
        data["id"] = self.pseudonym(patient.id)
        onset = data.get("onset", {})
        if onset.get("date") and onset.get("presentation_date"):
            onset.pop("pattern", None)  # re-derived from the month-cut dates

        def cut(node: object) -> object:
            if isinstance(node, dict):
                return {k: cut(v) if k not in ("date", "as_of", "start", "end",
                                                "presentation_date") else _month(v)
                        for k, v in node.items()}
            if isinstance(node, list):
                return [cut(v) for v in node]
            return node

        cleaned = cut(data)
        assert isinstance(cleaned, dict)  # noqa: S101 - cut() keeps the shape
        return _month_tolerant(cleaned)

    def record_assessment(self, record_id: str, account: Account) -> dict[str, Any]:
        """Assess the child now, keep the assessment, and return it (audited)."""
        patient = self.patient(record_id, Account(account.username, "clinician"))
        result = assess(patient).to_dict()
        with self._transaction() as session:
            record = session.scalar(select(PatientRecord).where(
                PatientRecord.record_id == record_id))
            assert record is not None  # noqa: S101 - read just above
            session.add(AssessmentRecord(patient_id=record.id, imnm_version=__version__,
                                         data=result, created_at=utcnow()))
            self._audit(session, account, "assess", record_id,
                        f"ENMC {result['classification']['enmc_2017']['class']}")
        if account.role != "clinician":
            result["patient_id"] = self.pseudonym(record_id)
        return result

    def audit(self, record_id: str | None = None) -> list[dict[str, Any]]:
        """The audit trail (optionally for one record), oldest first."""
        with self._sessions() as session:
            query = select(AuditEntry).order_by(AuditEntry.id)
            if record_id is not None:
                query = query.where(AuditEntry.record_id == record_id)
            return [{"at": e.at.isoformat(), "username": e.username, "action": e.action,
                     "record_id": e.record_id, "what": e.what} for e in session.scalars(query)]

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests and the demo)."""
        from sqlalchemy import func

        with self._sessions() as session:
            return {model.__tablename__: int(session.scalar(
                select(func.count()).select_from(model)) or 0)
                for model in (PatientRecord, VisitRecord, AssessmentRecord, ImportRecord,
                              AuditEntry, User)}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; the registry writes UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _loaded(record: PatientRecord) -> Patient:
    return load_patient(dict(record.data) | {"visits": [v.data for v in record.visits]})


def _lost_race(error: DBAPIError) -> bool:
    """Whether a database error means another writer got there first (worth a re-run)."""
    if isinstance(error, IntegrityError):
        return True
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(error.orig)


def _month_tolerant(data: dict[str, Any]) -> Patient:
    """Rebuild a patient whose dates were cut to the month (first of the month)."""

    def fill(node: object) -> object:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        if isinstance(node, str) and len(node) == 7 and node[4] == "-" and node[:4].isdigit():
            return node + "-01"
        return node

    filled = fill(data)
    assert isinstance(filled, dict)  # noqa: S101
    return Patient.model_validate(filled)
