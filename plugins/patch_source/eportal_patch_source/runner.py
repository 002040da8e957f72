"""Console tasks that go over the network ("Check now", a deploy that downloads first) run in a
background thread of the web process, one at a time, so that the request ends at once: its
transaction (on SQLite, the site's write lock) must not wait for a download. The page shows the
running task and refreshes itself until it is done; the outcome stays on the page afterwards.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from eportal_core.api import ServiceError

from .state import now_text

log = logging.getLogger(__name__)


@dataclass
class Task:
    title: str
    started: str
    #: "poll" (its outcome is the poll state the page shows anyway) or "deploy"
    kind: str = "poll"
    step: str = ""
    finished: str | None = None
    ok: bool | None = None
    message: str = ""


class Runner:
    """``submit(title, fn)`` runs ``fn(task) -> message`` in a thread unless a task is running.

    ``inline = True`` runs it in the caller's thread instead (functional tests, whose requests share
    one database connection)."""

    def __init__(self, inline: bool = False):
        self.inline = inline
        self.current: Task | None = None
        self.last: Task | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()

    def submit(self, title: str, fn: Callable[[Task], str], kind: str = "poll") -> bool:
        with self._lock:
            if self.current is not None:
                return False
            task = self.current = Task(title, now_text(), kind)
            self._done.clear()
        if self.inline:
            self._run(task, fn)
        else:
            threading.Thread(target=self._run, args=(task, fn), name="patch-source-task", daemon=True).start()
        return True

    def _run(self, task: Task, fn: Callable[[Task], str]) -> None:
        try:
            task.message = fn(task) or "done"
            task.ok = True
        except ServiceError as exc:
            task.message, task.ok = str(exc), False
        except Exception as exc:  # the thread must report, never die silently
            log.exception("patch source task %r failed", task.title)
            task.message, task.ok = f"unexpected {type(exc).__name__}: {exc}"[:500], False
        finally:
            task.finished = now_text()
            with self._lock:
                self.last, self.current = task, None
                self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no task runs (tests); True when idle."""
        return self._done.wait(timeout)
