"""The bulk lane's own process: big requests are predicted outside the server's interpreter.

A slice of a big request (prediction plus JSON, about 10 ms) holds the GIL, so in the server's
interpreter it delays the small lane's single visits: their p99 under a concurrent 49,140-row
request was 3-4x the quiet p99, measured. In a child process the two lanes run on two cores.

One child per server process, started by the first big request as a fresh interpreter running
:func:`_serve` (not through ``multiprocessing``, whose spawn imports the program that started
the server again: a script without a ``__main__`` guard would start a second server), sent each
served model once over a socket pair (the pickle never comes from a file or a client). The
child runs at a lower CPU priority (:data:`NICENESS`). It leaves when the server closes the
lane, when its socket closes (the server died), or when it sees its parent gone
(:data:`WATCH_SECONDS`), so a killed server leaves no process behind. Ctrl-C and SIGTERM sent to
the process group are the server's to handle: the child ignores them and leaves with the server.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import weakref
from multiprocessing.connection import Connection

from cputime.errors import InputError

__all__ = ["BulkWorker", "WorkerDied"]

logger = logging.getLogger("cputime.frontends.service")

#: How often the child checks that the server that started it is still there [s].
WATCH_SECONDS = 1.0
#: Added to the child's niceness: when the host's cores are all busy, the server's single
#: visits get the CPU before the bulk lane's throughput work.
NICENESS = 10
#: How long :meth:`BulkWorker.close` waits for the child to leave before killing it [s].
CLOSE_SECONDS = 2.0


class WorkerDied(RuntimeError):
    """The bulk lane's process ended during a call (the next call starts a new one)."""


class BulkWorker:
    """The child process that predicts the bulk lane's slices; its calls block, one at a time.

    Parameters
    ----------
    predict : callable
        ``predict(model, *args)`` run in the child, a module-level function (it is pickled by
        reference); its result goes back to the caller.
    """

    def __init__(self, predict):
        self.predict = predict
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._model_sent = None  # the model object the child holds

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        child = self._child
        return child.process.pid if child is not None and child.process.poll() is None else None

    def call(self, model, *args):
        """``predict(model, *args)`` in the child, sending ``model`` first if the child does
        not hold it; raises what it raised (:class:`WorkerDied` if the child died)."""
        with self._lock:
            if self.pid is None:
                self._stop()
                self._child = _Child.start(self.predict)
            try:
                if model is not self._model_sent:
                    self._child.conn.send(("model", model))
                    self._model_sent = model
                self._child.conn.send(("call", args))
                kind, value = self._child.conn.recv()
            except (EOFError, OSError) as err:
                self._stop()
                raise WorkerDied(f"the bulk lane's process ended: {err!r}") from None
        if kind == "error":
            raise value
        if kind == "bug":
            raise RuntimeError(f"in the bulk lane's process:\n{value}")
        return value

    def close(self) -> None:
        """Ask the child to leave, kill it if it has not after :data:`CLOSE_SECONDS`."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._child is not None:
            self._child.stop()
        self._child = self._model_sent = None


_CHILD = ("import sys; from multiprocessing.connection import Connection; "
          f"from {__name__} import _serve; "
          "_serve(Connection(int(sys.argv[1])), int(sys.argv[2]))")


class _Child:
    """A started child: its process and its end of the socket pair."""

    def __init__(self, process: subprocess.Popen, conn: Connection):
        self.process = process
        self.conn = conn
        # Also at interpreter exit, when a server stops without closing its lanes.
        self._finalizer = weakref.finalize(self, _stop_child, process, conn)

    @classmethod
    def start(cls, predict) -> _Child:
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
            )
        conn = Connection(ours.detach())
        conn.send(predict)
        logger.info("bulk lane process %d started", process.pid)
        return cls(process, conn)

    def stop(self) -> None:
        self._finalizer()


def _stop_child(process: subprocess.Popen, conn: Connection) -> None:
    conn.close()  # the child's recv() ends: it leaves
    try:
        process.wait(CLOSE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _serve(conn: Connection, parent_pid: int) -> None:
    """The child's loop: hold the last model sent, answer calls until the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(NICENESS)
    threading.Thread(target=_leave_when_orphaned, args=(parent_pid,), daemon=True).start()
    try:
        predict = conn.recv()
    except (EOFError, OSError):
        return
    model = None
    while True:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "model":
            model = value
            continue
        try:
            answer = ("ok", predict(model, *value))
        except InputError as err:
            answer = ("error", InputError(str(err)))
        except Exception:
            answer = ("bug", traceback.format_exc())
        try:
            conn.send(answer)
        except OSError:
            return


def _leave_when_orphaned(parent_pid: int) -> None:
    # A busy child notices a closed socket only when it answers: this notices a killed server
    # within WATCH_SECONDS whatever the child is doing.
    while os.getppid() == parent_pid:
        time.sleep(WATCH_SECONDS)
    os._exit(0)
