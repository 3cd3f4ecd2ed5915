"""Where replications run: this process, local worker processes, or a Dask cluster.

Every place runs the same pure task function on the same small arguments, so where a task ran
never changes what it returns. :func:`open_cluster` turns the ``--cluster`` option into one of:

* :class:`InProcess` - ``--workers 1`` without a cluster: tasks run here, one after another;
* :class:`LocalProcesses` - ``local`` (the default) with ``--workers N``: a
  :class:`~concurrent.futures.ProcessPoolExecutor`; a worker process that dies breaks the pool,
  so the pool is rebuilt and the unfinished tasks are submitted again (up to
  :data:`POOL_RESTARTS` times in one run);
* :class:`DaskCluster` - ``dask`` starts a Dask ``distributed`` LocalCluster of N single-thread
  worker processes; ``tcp://HOST:PORT`` (or the scheduler's JSON file) connects to a scheduler
  someone already started (Slurm, Kubernetes, cloud). Dask schedules, moves data and retries the tasks of a lost worker itself.

All three yield ``(key, result)`` pairs as tasks finish, in whatever order they finish; the
caller orders results by key.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

POOL_RESTARTS = 3
"""How many times a broken local pool (a worker process died) is rebuilt before giving up."""

DASK_RETRIES = 2
"""Extra tries Dask gives a task that raised; a task on a worker that died is rescheduled by
the scheduler anyway (up to ``distributed.scheduler.allowed-failures``, 3 by default)."""

Task = tuple[Any, tuple]
"""``(key, args)``: a hashable key naming the task (its seed range) and the arguments."""


class ClusterError(RuntimeError):
    """The cluster cannot be reached or lost every try of a task; the message is one line."""


class Executor(Protocol):
    """Runs tasks somewhere and yields their results as they finish."""

    label: str
    """Where tasks run, in words (for the progress line and the manifest)."""
    workers: int
    """How many tasks can run at once."""
    dashboard: str | None
    """The Dask dashboard address, when there is one."""

    def share(self, obj: Any, key: str) -> Any:
        """Make ``obj`` (a scenario, a booked list) available to tasks once; pass the returned
        handle in task arguments instead of the object."""

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Any, Any]]:
        """Run ``fn(*args)`` for every task; yield ``(key, result)`` as each finishes."""

    def close(self) -> None:
        """Release workers (cancelling what has not started)."""


class _Closing:
    """``with executor:`` closes it at the end."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(_Closing):
    """Tasks run in this process, in the order given."""

    label = "this process"
    workers = 1
    dashboard = None

    def share(self, obj: Any, key: str) -> Any:
        return obj

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Any, Any]]:
        for key, args in tasks:
            yield key, fn(*args)


_SHARED: dict[str, Any] = {}
"""In a local worker process: the objects :meth:`LocalProcesses.share` installed at start."""


def _install(shared: dict[str, Any]) -> None:
    _SHARED.update(shared)


@dataclass(frozen=True)
class Shared:
    """A handle to an object installed once in every local worker process."""

    key: str


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*(_SHARED[a.key] if isinstance(a, Shared) else a for a in args))


class LocalProcesses(_Closing):
    """A pool of local worker processes, rebuilt when a worker dies. Shared objects are
    installed once per process (the pool's initializer), not pickled into every task."""

    dashboard = None

    def __init__(self, workers: int) -> None:
        self.workers = int(workers)
        self.label = f"{self.workers} local process{'es' if self.workers != 1 else ''}"
        self.restarts = 0
        self._pool: ProcessPoolExecutor | None = None
        self._shared: dict[str, Any] = {}
        self._installed: set[str] = set()

    def _fresh_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_install,
                                         initargs=(dict(self._shared),))
        self._installed = set(self._shared)
        return self._pool

    def share(self, obj: Any, key: str) -> Any:
        self._shared[key] = obj
        return Shared(key)

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Any, Any]]:
        pending = dict(tasks)
        restarts = 0
        while pending:
            if self._pool is None or not self._installed >= set(self._shared):
                self._fresh_pool()
            futs = {self._pool.submit(_call, fn, args): key for key, args in pending.items()}
            broken = False
            try:
                while futs and not broken:
                    done, _ = wait(futs, return_when=FIRST_COMPLETED)
                    for f in done:
                        key = futs.pop(f)
                        try:
                            result = f.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        del pending[key]
                        yield key, result
            finally:
                for f in futs:
                    f.cancel()
            if broken:
                restarts += 1
                self.restarts += 1
                if restarts > POOL_RESTARTS:
                    raise ClusterError(f"a local worker process died {restarts} times "
                                       f"(out of memory?); {len(pending)} task(s) unfinished")
                logging.getLogger("ortwin").warning(
                    "a worker process died; restarting the pool and re-running %d task(s)",
                    len(pending))
                self._fresh_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _identity(x: Any) -> Any:
    return x


class DaskCluster(_Closing):
    """A Dask ``distributed`` client on a LocalCluster (``address`` None) or a scheduler."""

    def __init__(self, address: str | None = None, workers: int = 2,
                 connect_timeout: float = 20.0, scheduler_file: str | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - a core dependency
            raise ClusterError("--cluster dask needs Dask distributed: pip install "
                               "'dask[distributed]'") from None
        self._cluster = None
        try:
            if scheduler_file is not None:
                self.client = Client(scheduler_file=scheduler_file, timeout=connect_timeout)
                where = f"Dask scheduler {self.client.scheduler.address}"
            elif address is None:
                self._cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1,
                                             processes=True, dashboard_address=":0",
                                             silence_logs=logging.CRITICAL)
                self.client = Client(self._cluster)
                where = "Dask LocalCluster"
            else:
                self.client = Client(address, timeout=connect_timeout)
                where = f"Dask scheduler {address}"
        except (OSError, TimeoutError) as e:
            if self._cluster is not None:
                self._cluster.close()
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ClusterError(f"--cluster {scheduler_file or address or 'dask'}: cannot start "
                               f"or reach the Dask scheduler ({msg})") from None
        n = len(self.client.scheduler_info().get("workers", {}))
        self.workers = max(1, n)
        self.label = f"{where} ({n} worker{'s' if n != 1 else ''})"
        self.dashboard = self.client.dashboard_link
        self._shared: dict[str, Any] = {}

    def share(self, obj: Any, key: str) -> Any:
        # a task holding the object (not scattered data): if every worker holding it dies, the
        # scheduler recomputes it from the graph instead of failing the run
        if key not in self._shared:
            self._shared[key] = self.client.submit(_identity, obj, key=key, pure=False)
        return self._shared[key]

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Any, Any]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        futs = {}
        for key, args in tasks:
            name = key if isinstance(key, str) else "-".join(str(k) for k in key)
            futs[self.client.submit(fn, *args, key=name, pure=False,
                                    retries=DASK_RETRIES)] = key
        try:
            for f in as_completed(list(futs)):
                try:
                    result = f.result()
                except KilledWorker as e:
                    raise ClusterError(f"Dask lost the workers running task {f.key} "
                                       f"({e}); the parts written so far are kept "
                                       f"(--resume)") from None
                key = futs.pop(f)
                f.release()
                yield key, result
        finally:
            if futs:
                self.client.cancel(list(futs))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


def open_cluster(cluster: str | None, workers: int = 1) -> InProcess | LocalProcesses | DaskCluster:
    """The executor for ``--cluster`` (None or ``local``, ``dask``, ``tcp://HOST:PORT``, or the
    JSON scheduler file of ``dask scheduler --scheduler-file``) and ``--workers`` (local
    processes, or LocalCluster workers; ignored for a scheduler)."""
    spec = (cluster or "local").strip()
    if spec == "local":
        return InProcess() if workers <= 1 else LocalProcesses(workers)
    if spec == "dask":
        return DaskCluster(None, max(1, workers))
    if spec.startswith(("tcp://", "tls://", "ucx://")):
        return DaskCluster(spec)
    if spec.endswith(".json"):
        if not Path(spec).is_file():
            raise ClusterError(f"--cluster {spec}: scheduler file not found (expected the file "
                               f"`dask scheduler --scheduler-file` writes)")
        return DaskCluster(scheduler_file=spec)
    raise ClusterError(f"--cluster: expected local, dask, a scheduler address such as "
                       f"tcp://HOST:8786 or a scheduler file (.json), got {cluster!r}")


@contextlib.contextmanager
def using(cluster: str | Executor | None, workers: int = 1) -> Iterator[Executor]:
    """An open executor as it is (left open), or a ``--cluster`` value opened for the block."""
    if cluster is None or isinstance(cluster, str):
        with open_cluster(cluster, workers) as ex:
            yield ex
    else:
        yield cluster
