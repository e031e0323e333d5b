"""The bulk lane's own process: big requests are predicted outside the server's interpreter.

A slice of a big request (prediction plus JSON, about 10 ms) holds the GIL, so in the server's
interpreter it delays the small lane's single visits: their p99 under a concurrent 49,140-row
request was 3.9x the quiet p99, measured. In a child process the two lanes run on two cores.

One child per server process, started by the first big request (``spawn``: a fresh interpreter,
no copy of the server's threads or sockets), sent each served model once over its pipe (the
pickle never comes from a file or a client). The child leaves when the server closes the lane,
when its pipe closes (the server died), or when it sees its parent gone (:data:`WATCH_SECONDS`),
so a killed server leaves no process behind. Ctrl-C and SIGTERM sent to the process group are
the server's to handle: the child ignores them and leaves when the server closes it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback

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
        self._process: multiprocessing.Process | None = None
        self._conn = None
        self._model_sent = None  # the model object the child holds

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def call(self, model, *args):
        """``predict(model, *args)`` in the child, sending ``model`` first if the child does
        not hold it; raises what it raised (:class:`WorkerDied` if the child died)."""
        with self._lock:
            if self.pid is None:
                self._start()
            try:
                if model is not self._model_sent:
                    self._conn.send(("model", model))
                    self._model_sent = model
                self._conn.send(("call", args))
                kind, value = self._conn.recv()
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

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end, self.predict, os.getpid()),
                                  name="cputime-bulk-lane", daemon=True)
        process.start()
        child_end.close()
        self._process, self._conn, self._model_sent = process, parent_end, None
        logger.info("bulk lane process %d started", process.pid)

    def _stop(self) -> None:
        if self._process is None:
            return
        self._conn.close()  # the child's recv() ends: it leaves
        self._process.join(CLOSE_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process = self._conn = self._model_sent = None


def _serve(conn, predict, parent_pid: int) -> None:  # pragma: no cover - runs in the child
    """The child's loop: hold the last model sent, answer calls until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(NICENESS)
    threading.Thread(target=_leave_when_orphaned, args=(parent_pid,), daemon=True).start()
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


def _leave_when_orphaned(parent_pid: int) -> None:  # pragma: no cover - runs in the child
    # A busy child notices a closed pipe only when it answers: this notices a killed server
    # within WATCH_SECONDS whatever the child is doing.
    while os.getppid() == parent_pid:
        time.sleep(WATCH_SECONDS)
    os._exit(0)
