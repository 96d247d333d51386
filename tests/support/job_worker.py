"""``cargobay worker`` with one extra kind for tests: ``python -m tests.support.job_worker``.

``test.sleep`` appends "start PID" to ``payload.marker``, sleeps ``payload.seconds``, appends
"done PID" and returns ``{"pid": PID}``. Settings come from the CARGOBAY_* environment as usual.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

from cargobay.config import Settings
from cargobay.jobs.queue import ClaimedJob
from cargobay.logs import configure_logging
from cargobay.runtime import Runtime
from cargobay.worker import JobSet, build_jobs, run_worker
from tests.support.peers import REPO


class WorkerProcess:
    """A worker process started by a test (``cargobay worker``, or this module), logging to ``log``."""

    def __init__(self, env: dict[str, str], log: Path, command: list[str]) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM (running jobs get their grace), SIGKILL if it has not ended 20 s later."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


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
