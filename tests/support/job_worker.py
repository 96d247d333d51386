"""``cargobay worker`` with one extra kind for tests: ``python -m tests.support.job_worker``.

``test.sleep`` appends "start PID" to ``payload.marker``, sleeps ``payload.seconds``, appends
"done PID" and returns ``{"pid": PID}``. Settings come from the CARGOBAY_* environment as usual.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from cargobay.config import Settings
from cargobay.jobs.queue import ClaimedJob
from cargobay.logs import configure_logging
from cargobay.runtime import Runtime
from cargobay.worker import JobSet, build_jobs, run_worker


def _note(marker: Path, event: str) -> None:
    with marker.open("a") as f:
        f.write(f"{event} {os.getpid()}\n")


async def sleep_job(job: ClaimedJob) -> dict[str, Any]:
    marker = Path(job.payload["marker"])
    _note(marker, "start")
    await asyncio.sleep(float(job.payload["seconds"]))
    _note(marker, "done")
    return {"pid": os.getpid()}


def jobs_with_test_kinds(runtime: Runtime) -> JobSet:
    jobs = build_jobs(runtime)
    jobs.handlers["test.sleep"] = sleep_job
    return jobs


if __name__ == "__main__":
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(settings, jobs_with_test_kinds)
