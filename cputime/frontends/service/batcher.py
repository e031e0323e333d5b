"""The prediction loop of ``POST /v1/predict``: requests waiting at the same time are predicted
together, big requests in slices taken in turn.

A prediction has a fixed cost (a few ms of NumPy and XGBoost set-up) much larger than its cost
per row, so while one batch is computed the requests that arrive queue up and go together into
the next: no waiting window when idle, batches as large as the load under load. Rows do not
depend on each other, so each request gets exactly the rows it would get alone.

Two lanes, each its own loop (:func:`lanes`): small requests (a few rows, a walltime asked at
each submission) never queue behind the slice of a big one; big requests share their lane in
slices of :data:`BULK_SLICE_ROWS` rows, taken in turn, so that a big request delays another by
one slice, not by all of it. The small lane predicts in a thread of the server; the bulk lane in
its own process (:mod:`.bulkworker`) where one is given, so that its slices do not hold the
server's GIL.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from cputime.errors import InputError
from cputime.frontends.service.bulkworker import BulkWorker
from cputime.frontends.service.errors import field_path
from cputime.frontends.service.model import ServedModel
from cputime.frontends.service.schemas import PlanOptions

__all__ = ["Batcher", "VisitJob", "as_part", "lanes"]

logger = logging.getLogger("cputime.frontends.service")

#: Most rows of a request that goes through the small lane.
SMALL_ROWS = 64
#: Rows of a big request predicted in one slice (about 30 ms of work on a 2-core host).
BULK_SLICE_ROWS = 1000
#: Most rows one batch predicts.
BATCH_ROWS = 20_000


@dataclass(eq=False)
class VisitJob:
    """One /v1/predict request waiting in a :class:`Batcher`, predicted slice by slice."""

    served: ServedModel
    visits: list[dict]
    sensors: tuple[str, ...]
    options: PlanOptions
    future: asyncio.Future | None = None
    parts: list[bytes] = field(default_factory=list)
    taken: int = 0  # visits handed to the batcher so far

    @property
    def key(self) -> tuple:
        """What requests predicted together must share."""
        return (id(self.served), self.sensors, *self.options.model_dump().values())

    @property
    def n_rows(self) -> int:
        return len(self.visits) * max(1, len(self.sensors))

    @property
    def finished(self) -> bool:
        return self.future.done() or self.taken >= len(self.visits)

    def take(self, max_rows: int) -> tuple[int, list[dict]]:
        """The next visits, at most ``max_rows`` rows of them (at least one visit), and the
        index of the first in the request."""
        count = max(1, max_rows // max(1, len(self.sensors)))
        start = self.taken
        piece = self.visits[start:start + count]
        self.taken += len(piece)
        return start, piece

    def stop(self) -> None:
        """Drop the rest of the work (client gone or time limit)."""
        self.taken = len(self.visits)
        self.parts.clear()


class Batcher:
    """One lane: runs the jobs waiting at the same time as one prediction per option set.

    Each batch takes at most ``slice_rows`` rows of every waiting job, in turn, smallest groups
    first, at most ``batch_rows`` in all.
    """

    def __init__(self, slice_rows: int, batch_rows: int = BATCH_ROWS,
                 worker: BulkWorker | None = None):
        self.slice_rows = slice_rows
        self.batch_rows = batch_rows
        self.worker = worker
        self.queue: asyncio.Queue[VisitJob] = asyncio.Queue()

    async def submit(self, job: VisitJob) -> list[bytes]:
        """The job's rows as parts of one JSON array (:func:`as_part`)."""
        job.future = asyncio.get_running_loop().create_future()
        await self.queue.put(job)
        return await job.future

    async def run(self) -> None:
        active: list[VisitJob] = []
        while True:
            if not active:
                active.append(await self.queue.get())
            while not self.queue.empty():
                active.append(self.queue.get_nowait())
            pieces: list[tuple[VisitJob, int, list[dict]]] = []
            rows = 0
            for job in active:
                if rows >= self.batch_rows:
                    break
                if not job.finished:
                    start, piece = job.take(self.slice_rows)
                    pieces.append((job, start, piece))
                    rows += len(piece) * max(1, len(job.sensors))
            groups: dict[tuple, list[tuple[VisitJob, int, list[dict]]]] = {}
            for item in pieces:
                groups.setdefault(item[0].key, []).append(item)
            for group in sorted(groups.values(), key=lambda g: sum(len(p) for _, _, p in g)):
                await self._run_group(group)
            for job, _, _ in pieces:
                if job.taken >= len(job.visits):
                    _settle(job.future, result=job.parts)
            # Jobs served in this batch go behind those that were not (round robin).
            served_jobs = {id(job) for job, _, _ in pieces}
            active = ([j for j in active if id(j) not in served_jobs and not j.future.done()]
                      + [j for j, _, _ in pieces if not j.future.done()])

    async def _run_group(self, group: list) -> None:
        try:
            parts = await run_in_threadpool(predict_pieces, group, self.worker)
        except InputError as err:
            if len(group) == 1:
                job, start, _ = group[0]
                _settle(job.future, error=InputError(field_path(str(err), start)))
            else:
                for item in group:  # find whose input it was: each alone
                    await self._run_group([item])
            return
        except Exception as err:  # a bug: every request of the batch gets the 500
            logger.exception("prediction failed")
            for job, _, _ in group:
                _settle(job.future, error=err)
            return
        for (job, _, _), rows in zip(group, parts, strict=True):
            if not job.future.done():
                job.parts.append(rows)


def lanes(bulk_worker: BulkWorker | None = None) -> dict[str, Batcher]:
    """The small and the bulk lane (predicting in ``bulk_worker`` if given)."""
    return {"small": Batcher(slice_rows=SMALL_ROWS),
            "bulk": Batcher(slice_rows=BULK_SLICE_ROWS, worker=bulk_worker)}


def lane_of(job: VisitJob) -> str:
    return "small" if job.n_rows <= SMALL_ROWS else "bulk"


def _settle(future: asyncio.Future, *, result=None, error: Exception | None = None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def predict_pieces(group: list, worker: BulkWorker | None = None) -> list[bytes]:
    """The rows (:func:`as_part`) of each (job, start, visits) piece of a group sharing model,
    sensors and options, predicted by :func:`predict_json` here or in ``worker``."""
    first = group[0][0]
    sizes = [len(piece) * max(1, len(first.sensors)) for _, _, piece in group]
    args = ([visit for _, _, piece in group for visit in piece], list(first.sensors) or None,
            first.options.model_dump(), first.served.version, sizes)
    if worker is None:
        return predict_json(first.served.loaded.model, *args)
    return worker.call(first.served.loaded.model, *args)


def predict_json(model, visits: list[dict], sensors: list[str] | None, options: dict,
                 version: str, sizes: list[int]) -> list[bytes]:
    """The rows of ``visits`` x ``sensors`` as parts (:func:`as_part`) of ``sizes`` rows each.

    Through :func:`cputime.planning.predictions.predict_visits`, the path that builds no pandas
    object (the same numbers as the table path), serialised as ``cputime predict --format json``
    writes them (pandas' JSON records, ``filter`` as its letter). ``options`` are
    :class:`PlanOptions` fields.
    """
    from pandas.io.json import ujson_dumps

    from cputime.inputs.opsim import FILTER_LETTERS
    from cputime.planning.predictions import predict_visits

    rows = predict_visits(model, visits, sensors, model_version=version, **options)
    for row in rows:
        row["filter"] = FILTER_LETTERS[int(row["filter"])]
    bounds = itertools.accumulate(sizes, initial=0)
    return [as_part(ujson_dumps(rows[a:b], double_precision=10))
            for a, b in itertools.pairwise(bounds)]


def as_part(json_array: str) -> bytes:
    """A JSON array of records as a part of an answer: its records, each preceded by a comma
    (empty for none). An answer's array is its parts joined, the first comma dropped: the parts
    are made where the rows are (the bulk lane's process), and joined without parsing."""
    return b"" if json_array == "[]" else ("," + json_array[1:-1]).encode()
