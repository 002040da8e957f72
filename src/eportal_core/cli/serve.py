"""``eportal serve``: waitress, the scheduler, logs in the data dir, a clean stop on SIGTERM."""
from __future__ import annotations

import ctypes
import logging
import logging.handlers
import signal
import sys
from pathlib import Path

import click
from waitress import create_server

from .. import make_app
from .. import migrate as m
from ..services.archives import clean_partial_imports
from ..settings import SettingsError, ensure_data_dir

log = logging.getLogger(__name__)


def _log_to_data_dir(data_dir: Path) -> None:
    handler = logging.handlers.RotatingFileHandler(data_dir / "logs" / "eportal.log", maxBytes=20 * 2**20, backupCount=5)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s [%(name)s] %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
        logging.getLogger().setLevel(logging.INFO)


def _fixed_mmap_threshold() -> None:
    """Each argon2 verification allocates 19 MiB; with glibc's sliding mmap threshold that memory
    stays parked in every worker thread's arena (measured: 86 -> 225 MiB after 60 logins on 8
    threads). A fixed threshold hands such buffers back to the OS (92 MiB)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


#: seconds a thread may hold the GIL while another waits for it (CPython's default: 0.005)
GIL_SWITCH_INTERVAL = 0.0002


def _short_gil_switch_interval() -> None:
    """Every agent request gives the GIL up briefly for its database lookup; with CPython's 5 ms
    switch interval the thread then waits behind busy ones for up to 5 ms to get it back, and on
    two CPUs the hand-offs cost more CPU than the requests (bench/fleet_bench.py, shared CPUs,
    64 connections: bare route 2,400 -> 3,300 req/s and check-ins 1,200 -> 2,500 req/s at 0.2 ms;
    no change when the portal has one CPU)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)


def serve(env, host: str, port: int, threads: int) -> None:
    _fixed_mmap_threshold()
    _short_gil_switch_interval()
    env.setup_logging()
    # waitress warns "Task queue depth is N" for every request that waits for a free worker thread:
    # under load that is every request (bench/fleet_bench.py, 64 agent connections on 8 threads:
    # ~3,000 log lines a second, 14% of the process's time on the bare route). A request waiting a
    # few milliseconds for a thread is normal operation, not a warning.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    settings = env.settings
    data_dir = ensure_data_dir(settings)
    _log_to_data_dir(data_dir)
    for name in clean_partial_imports(data_dir):  # what an import that crashed left behind
        log.info("removed the unfinished patchset import %s", name)
    current, head = m.current_revision(env.engine), m.head_revision()
    if current != head:
        raise SettingsError(f"the database is at revision {current or 'empty'} but this eportal needs {head}: run 'eportal migrate'")

    def stop(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    app = make_app(settings, env.pm, engine=env.engine)
    try:
        # with trusted proxies the app itself believes X-Forwarded-* only from them (clientip,
        # scripts); waitress would otherwise drop those headers before the app could look
        server = create_server(app, host=host, port=port, threads=threads, ident="eportal",
                               clear_untrusted_proxy_headers=not settings["eportal.trusted_proxies"], channel_timeout=120)
    except OSError as exc:
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    scheduler = None
    try:
        if settings["eportal.scheduler"]:
            from ..scheduler import SiteScheduler
            scheduler = SiteScheduler(settings, env.engine, env.pm)
            app.registry["scheduler"] = scheduler
            scheduler.start()
        click.echo(f"eportal serving on http://{host}:{port}/admin (data in {data_dir})")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if scheduler is not None:
            scheduler.shutdown()
        _stop_checkins(app.registry)
        log.info("eportal stopped")


def _stop_checkins(registry) -> None:
    """Write the check-ins still held in memory before the process goes."""
    buf = registry.get("checkins")
    if buf is None:
        return
    pending = buf.pending()
    try:
        buf.stop()
    except Exception:
        log.exception("could not write %d pending check-ins on shutdown", buf.pending())
    else:
        log.info("wrote %d pending check-ins on shutdown", pending)
