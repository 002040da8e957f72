"""The site scheduler: APScheduler 3 running the jobs plugins contribute, in one process per site.

Leadership is a lease row (``scheduler_lease``) taken with one conditional UPDATE, which works
the same on SQLite and PostgreSQL: a process runs jobs only while it holds an unexpired lease,
renews it every third of ``eportal.scheduler.lease_seconds``, and a dead leader's lease is taken
over once it expires.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from .db import get_session_factory, transaction_session, writer
from .models import SchedulerLease, utcnow

log = logging.getLogger(__name__)

LEASE_NAME = "site-jobs"


@dataclass(frozen=True)
class Job:
    """A periodic job. ``run(ctx)`` gets a :class:`JobContext`; exceptions are caught and reported."""

    id: str
    run: Callable[[JobContext], Any]
    seconds: float
    description: str = ""


@dataclass
class JobContext:
    settings: dict
    engine: Any
    pm: Any

    def dbsession(self):
        """A session in its own transaction: committed when the block ends, aborted on error."""
        return transaction_session(get_session_factory(self.engine))


@dataclass
class JobStatus:
    description: str
    every_seconds: float
    runs: int = 0
    failures: int = 0
    last_run: str | None = None
    last_error: str | None = None


@dataclass
class SiteScheduler:
    settings: dict
    engine: Any
    pm: Any
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    def __post_init__(self):
        self.jobs: list[Job] = []
        self.status: dict[str, JobStatus] = {}
        self.is_leader = False
        self.lease_expires = None
        self.running = False
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()
        self.ctx = JobContext(self.settings, self.engine, self.pm)

    def collect_jobs(self) -> list[Job]:
        jobs: list[Job] = []
        for contributed in self.pm.hook.eportal_scheduled_jobs(settings=self.settings):
            jobs.extend(contributed or [])
        ids = [j.id for j in jobs]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"two plugins contribute scheduled jobs with the same id: {', '.join(sorted(dupes))}")
        return jobs

    def start(self) -> None:
        self.jobs = self.collect_jobs()
        lease = self.settings["eportal.scheduler.lease_seconds"]
        sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        self.renew_lease()
        sched.add_job(self.renew_lease, "interval", seconds=max(3, lease / 3), id="_lease")
        for job in self.jobs:
            self.status[job.id] = JobStatus(job.description, job.seconds)
            sched.add_job(self.run_job, "interval", seconds=job.seconds, args=[job], id=job.id)
        sched.start()
        self._scheduler = sched
        self.running = True
        log.info("scheduler started with %d jobs (%s); leader: %s", len(self.jobs), self.holder, self.is_leader)

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.running = False
        self.release_lease()

    # --- leadership -------------------------------------------------------------------------

    def renew_lease(self) -> bool:
        """Take or extend the lease; True when this process holds it afterwards."""
        now = utcnow()
        expires = now + timedelta(seconds=self.settings["eportal.scheduler.lease_seconds"])
        try:
            with writer(self.engine).begin() as conn:
                taken = conn.execute(
                    update(SchedulerLease)
                    .where(SchedulerLease.name == LEASE_NAME)
                    .where((SchedulerLease.holder == self.holder) | (SchedulerLease.expires < now))
                    .values(holder=self.holder, expires=expires)).rowcount
                if not taken:
                    exists = conn.execute(
                        SchedulerLease.__table__.select().where(SchedulerLease.name == LEASE_NAME)).first()
                    if exists is None:
                        conn.execute(insert(SchedulerLease).values(name=LEASE_NAME, holder=self.holder, expires=expires))
                        taken = 1
        except IntegrityError:
            taken = 0  # another process inserted the row first
        except Exception:  # the database is down: do not run jobs, try again next time
            log.exception("could not renew the scheduler lease")
            taken = 0
        self.lease_expires = expires if taken else None
        if bool(taken) != self.is_leader:
            log.info("scheduler lease %s by %s", "taken" if taken else "lost", self.holder)
        self.is_leader = bool(taken)
        return self.is_leader

    def release_lease(self) -> None:
        if not self.is_leader:
            return
        try:
            with writer(self.engine).begin() as conn:
                conn.execute(update(SchedulerLease).where(SchedulerLease.name == LEASE_NAME,
                                                          SchedulerLease.holder == self.holder)
                             # in the past, so another node takes over at once even if its clock lags a little
                             .values(expires=utcnow() - timedelta(minutes=5)))
        except Exception:
            log.exception("could not release the scheduler lease")
        self.is_leader = False

    # --- running -----------------------------------------------------------------------------

    def run_job(self, job: Job) -> None:
        # the lease's own expiry, not just the flag: a stalled leader must not run jobs after losing it
        if not self.is_leader or self.lease_expires is None or utcnow() >= self.lease_expires:
            return
        status = self.status.setdefault(job.id, JobStatus(job.description, job.seconds))
        status.runs += 1
        status.last_run = utcnow().isoformat(" ")
        try:
            job.run(self.ctx)
            status.last_error = None
        except Exception as exc:  # a failing job must never stop the scheduler
            status.failures += 1
            status.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("scheduled job %s failed", job.id)

    def describe(self) -> dict:
        return {
            "running": self.running,
            "leader": self.is_leader,
            "jobs": {jid: vars(st) for jid, st in self.status.items()},
        }
