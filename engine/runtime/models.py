"""Runtime tables: deployments and process definitions, instances and the projections each step rewrites
(human tasks, jobs, message subscriptions, incidents), users and groups, the audit log, API tokens and
evidence. Typed SQLAlchemy 2.x models."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime

#: sort key of tasks without a due date (they come last in "soonest due first")
NO_DUE = datetime(9999, 12, 31, tzinfo=timezone.utc)

# JSON documents (nothing queries into them, so plain JSON on every backend).
JsonDoc = JSON()
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Deployment(Base):
    """One ``deploy`` call: the files as given, so any version can be shown and diffed."""

    __tablename__ = "deployment"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    files: Mapped[dict[str, str]] = mapped_column(JsonDoc)  # file name -> XML text
    deployed_by: Mapped[str] = mapped_column(String(120))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessDefinition(Base):
    """An executable process, versioned by the hash of its parsed content (spec + called specs)."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("process_id", "version", name="uq_process_definition_version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[Optional[str]] = mapped_column(String(400))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"))
    source_file: Mapped[str] = mapped_column(String(400))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    #: Serialized spec and subprocess specs (``{"spec": …, "subprocess_specs": …}``).
    spec_json: Mapped[str] = mapped_column(Text)
    #: ``{"source_id|target_id": flow_id}`` per diagram, to name the sequence flows taken.
    flow_index: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    #: Form ids referenced by user tasks, with the hash of each form at deploy time.
    forms: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    deployed_by: Mapped[str] = mapped_column(String(120))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_status_id", "status", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    business_key: Mapped[Optional[str]] = mapped_column(String(200), index=True)
    #: running | suspended | completed | terminated
    status: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(20))
    library_version: Mapped[str] = mapped_column(String(20))
    rev: Mapped[int] = mapped_column(Integer, default=0)
    parent_instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"), index=True)
    started_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: Set when suspended/terminated: who and why.
    status_reason: Mapped[Optional[str]] = mapped_column(Text)
    #: Head of this instance's audit hash chain (kept here: the row is locked by every step anyway).
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="0" * 64)
    #: audit_seq recorded by the latest anchor
    audit_anchored_seq: Mapped[int] = mapped_column(Integer, default=0)


class HumanTask(Base):
    """The inbox projection of READY user/manual tasks."""

    __tablename__ = "human_task"
    __table_args__ = (
        UniqueConstraint("task_guid", name="uq_human_task_task_guid"),
        Index("ix_human_task_status_assignee", "status", "assignee"),
        Index("ix_human_task_status_due", "status", "due_at"),
        Index("ix_human_task_instance_status", "instance_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    task_guid: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[Optional[str]] = mapped_column(String(400))
    process_id: Mapped[str] = mapped_column(String(200))
    business_key: Mapped[Optional[str]] = mapped_column(String(200), index=True)
    form_id: Mapped[Optional[str]] = mapped_column(String(200))
    form_hash: Mapped[Optional[str]] = mapped_column(String(64))
    candidate_groups: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    assignee: Mapped[Optional[str]] = mapped_column(String(120))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: open | completed | cancelled
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    completed_by: Mapped[Optional[str]] = mapped_column(String(120))
    #: when the assignee/candidates were reminded of the coming due date, and when the overdue task
    #: was escalated to the supervisors (set once each by the reminder job)
    reminded_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    escalated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class HumanTaskCandidate(Base):
    """One row per (open task, candidate group): the index behind "my groups' tasks"."""

    __tablename__ = "human_task_candidate"
    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(120), primary_key=True)
    #: copies of the task's state so that "unclaimed tasks of my group, soonest due first" is one
    #: ordered index range, however many open tasks there are: the due date (``NO_DUE`` when none)
    #: and whether someone has claimed the task
    due_key: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: NO_DUE)
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the district of the task's entity (``entity.uscc = human_task.business_key``), NULL when the task has
    #: no entity: written by database triggers (migration 0008), never by the runtime, so that an officer's
    #: jurisdiction is an index range of the queue too
    district: Mapped[Optional[str]] = mapped_column(String(6))
    __table_args__ = (Index("ix_human_task_candidate_group", "group_name", "task_id"),
                      Index("ix_human_task_candidate_queue", "group_name", "claimed", "due_key"),
                      Index("ix_human_task_candidate_district", "group_name", "claimed", "district", "due_key",
                            "task_id"))


class Job(Base):
    """Due work: timers (one per waiting timer task), service-task retries, held tasks' continuations."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_due", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: timer | retry | continue (a task held for an asynchronous continuation, engine.runtime.continuations)
    kind: Mapped[str] = mapped_column(String(20))
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[Optional[str]] = mapped_column(String(36))
    bpmn_id: Mapped[Optional[str]] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Incident(Base):
    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[Optional[str]] = mapped_column(String(36))
    bpmn_id: Mapped[Optional[str]] = mapped_column(String(200))
    error_type: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    stack: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: open | resolved
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    resolved_by: Mapped[Optional[str]] = mapped_column(String(120))


class MessageSubscription(Base):
    """A waiting message catch: name plus the correlation values it waits for."""

    __tablename__ = "message_subscription"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[Optional[str]] = mapped_column(String(200))
    message_name: Mapped[str] = mapped_column(String(200), index=True)
    correlations: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AppUser(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    display_name: Mapped[Optional[str]] = mapped_column(String(200))
    password_hash: Mapped[Optional[str]] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: district codes (6-digit administrative codes) whose entities the user may see; empty = all
    jurisdiction: Mapped[Optional[list[str]]] = mapped_column(JsonDoc, default=list)
    #: carried by each web session; bumped by sign-out, a password change or reset, deactivation and a change
    #: of roles or groups, which ends every session signed with an older value
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the TOTP secret (base32) of the user's second factor: set when enrolment starts, in use once
    #: ``totp_enabled_at`` is set (``engine/runtime/totp.py``); ``None``: no second factor
    totp_secret: Mapped[Optional[str]] = mapped_column(String(64))
    totp_enabled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    #: the time step of the last code accepted: a code is never accepted twice (replay)
    totp_last_step: Mapped[Optional[int]] = mapped_column(BigInteger)


class AppGroup(Base):
    __tablename__ = "app_group"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    #: department | team | jurisdiction
    kind: Mapped[str] = mapped_column(String(40), default="department")


class UserGroup(Base):
    __tablename__ = "user_group"
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("app_group.id", ondelete="CASCADE"), primary_key=True)


class AuditChain(Base):
    """Head of each chain that is not an instance's (``system``): the last seq and hash.
    Instance chains keep their head on ``process_instance``."""

    __tablename__ = "audit_chain"
    chain: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    #: seq recorded by the latest anchor (chains with last_seq > anchored_seq go into the next one)
    anchored_seq: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(Base):
    """Append-only. ``hash = sha256(prev_hash ‖ canonical JSON of the row's content)``."""

    __tablename__ = "audit_event"
    __table_args__ = (
        # an instance's events are its chain ("instance:<id>"): this index serves them in seq order
        UniqueConstraint("chain", "seq", name="uq_audit_event_chain_seq"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain: Mapped[str] = mapped_column(String(60))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(60))
    instance_id: Mapped[Optional[int]] = mapped_column(BigId)
    bpmn_id: Mapped[Optional[str]] = mapped_column(String(200))
    task_guid: Mapped[Optional[str]] = mapped_column(String(36))
    flow_ids: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    data_diff: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditAnchor(Base):
    """Periodic record of every chain's head, itself hash-chained."""

    __tablename__ = "audit_anchor"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    heads: Mapped[dict[str, Any]] = mapped_column(JsonDoc)  # chain -> [seq, hash]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class SignInThrottle(Base):
    """Failed sign-in attempts counted per key (an account, an account from one address or browser, an
    address), shared by every web process. ``key`` is the SHA-256 of the scope and the value, so the table
    never holds what a stranger typed as a user name. Rows whose last attempt is old are pruned."""

    __tablename__ = "sign_in_throttle"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: account | account_address | account_device | address
    scope: Mapped[str] = mapped_column(String(20))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """Bearer tokens for machine clients of ``/api/v1``; only the SHA-256 of the token is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class Evidence(Base):
    """A file attached to a human task; the bytes live under ``REGFLOW_UPLOAD_DIR`` named by SHA-256."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_id: Mapped[Optional[int]] = mapped_column(ForeignKey("human_task.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(120))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BackgroundJob(Base):
    """Long work a person asked for (a what-if simulation), run off the request threads by whichever worker
    claims it first (``engine.runtime.worker.run_background``); every web process sees the same rows.
    ``params``, ``progress`` and ``result`` are JSON documents of the job's kind; ``heartbeat_at`` is renewed
    while a worker runs it, so that a job whose worker died is found and marked failed."""

    __tablename__ = "background_job"
    __table_args__ = (Index("ix_background_job_status", "status", "id"),
                      Index("ix_background_job_owner", "owner", "id"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: simulation (the runners a process registers: ``engine.runtime.worker.register_background``)
    kind: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(120))
    #: queued | running | done | failed
    status: Mapped[str] = mapped_column(String(10), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    progress: Mapped[Optional[dict[str, Any]]] = mapped_column(JsonDoc)
    result: Mapped[Optional[dict[str, Any]]] = mapped_column(JsonDoc)
    error: Mapped[Optional[str]] = mapped_column(Text)
    #: the worker that runs it (host:pid)
    worker: Mapped[Optional[str]] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class ReadRecord(Base):
    """One read of a dossier, an evidence file or an ID-bearing record (who, what, when, how, from where),
    kept apart from the audit chains because reads are many; append-only, pruned after
    ``REGFLOW_LOG_RETENTION_DAYS`` (``engine/runtime/reads.py``)."""

    __tablename__ = "read_record"
    __table_args__ = (Index("ix_read_record_actor", "actor", "at"), Index("ix_read_record_ref", "ref", "at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    #: dossier | evidence | instance
    kind: Mapped[str] = mapped_column(String(20))
    #: what was read: a USCC, an evidence id, an instance id
    ref: Mapped[str] = mapped_column(String(200))
    #: web | api | cli
    via: Mapped[str] = mapped_column(String(10))
    address: Mapped[Optional[str]] = mapped_column(String(64))
