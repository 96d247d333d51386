"""One job run in a child process of ``serve``, so its Python work does not share the serving
process's interpreter (see ``worker.CHILD_PROCESS_KINDS`` for which jobs, and why).

The parent starts ``python -m cargobay.job_process``, writes one JSON line to its stdin
(``{"settings": {...}, "job": {...}}``) and keeps stdin open. The child runs the job's handler with a
runtime of its own and writes one JSON line to stdout: ``{"result": ...}`` or ``{"error": "..."}``
(exit status 0 or 1). Its logs go to stderr, the parent's log stream. End of input on stdin (the parent
is stopping, lost the job's lease, or died) cancels the handler, which records what it must (a
collection marks its run failed), and the child exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from typing import Any

from cargobay.config import Settings
from cargobay.jobs.queue import ClaimedJob
from cargobay.logs import configure_logging, get_logger
from cargobay.runtime import build_runtime
from cargobay.worker import build_jobs

log = get_logger("cargobay.job_process")

# A collection yields the machine's cores to the requests: at niceness 10 the kernel gives it about a
# tenth of a core's time that the serving processes want, and all of what they leave (the run only
# takes longer on a busy machine; nothing waits for it).
NICENESS = 10


def main() -> int:
    os.nice(NICENESS)
    line = sys.stdin.readline()
    try:
        request = json.loads(line)
        settings = Settings.model_validate(request["settings"])
        job = ClaimedJob(**request["job"])
    except (ValueError, KeyError, TypeError) as exc:
        _answer({"error": f"bad request from the parent process: {exc}"})
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        result = asyncio.run(_run(settings, job))
    except asyncio.CancelledError:
        _answer({"error": "cancelled: the parent process stopped the job"})
        return 1
    except Exception as exc:
        _answer({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _answer({"result": result})
    return 0


async def _run(settings: Settings, job: ClaimedJob) -> dict[str, Any] | None:
    runtime = build_runtime(settings, migrate=False)
    try:
        handler = build_jobs(runtime).handlers[job.kind]
        work = asyncio.ensure_future(handler(job))
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=_cancel_on_end_of_input, args=(loop, work), name="parent-watch", daemon=True
        ).start()
        return await work
    finally:
        await runtime.close()


def _cancel_on_end_of_input(loop: asyncio.AbstractEventLoop, work: asyncio.Future[Any]) -> None:
    sys.stdin.read()  # returns at end of input: the parent closed the pipe, or died
    if not work.done():
        log.warning("job_stopped_by_parent")
        loop.call_soon_threadsafe(work.cancel)


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
