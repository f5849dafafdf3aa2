"""Worker processes that cannot outlive the process that started them.

A worker blocked on a pipe to a parent that was killed (``kill -9``, an out-of-memory kill) would
otherwise wait for minutes as an orphan. :func:`die_with_parent`, run first in each worker (a pool's
initializer), ends the worker as soon as its parent is gone: on Linux the kernel kills it at once
(``prctl(PR_SET_PDEATHSIG)``); on every platform a daemon thread also watches ``os.getppid()``, which
changes when the parent dies, and covers the case the kernel signal cannot (a parent that died before
the call).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent"]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 0.5


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # the parent is gone: nobody will read this worker's results


def die_with_parent(parent_pid: int, ignore_interrupt: bool = True) -> None:
    """End this process when the process ``parent_pid`` (its parent) exits.

    ``ignore_interrupt``: leave Ctrl-C to the parent, which stops its workers itself, so that one
    keypress gives one message rather than a traceback per worker.
    """
    if ignore_interrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the kernel signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="pmfnas-parent-watch", daemon=True).start()
