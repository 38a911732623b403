"""Children of `baylink up` stop when it dies, even by SIGKILL, so no orphan keeps running.

The supervisor names itself in BAYLINK_SUPERVISOR_PID; a child that sees its parent change
(re-parented to init) sends itself SIGTERM and shuts down as on any other stop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

SUPERVISOR_ENV = "BAYLINK_SUPERVISOR_PID"
_POLL_SECONDS = 1.0


def watch_supervisor() -> None:
    """Start the watch if this process was started by a supervisor; otherwise do nothing."""
    wanted = os.environ.get(SUPERVISOR_ENV)
    if not wanted or not wanted.isdigit():
        return
    supervisor = int(wanted)

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(_POLL_SECONDS):
            if os.getppid() != supervisor:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="baylink-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child about to exec (a binary we cannot change, such as the broker): ask Linux
    to send it SIGTERM when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
