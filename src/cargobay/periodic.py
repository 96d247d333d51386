"""Work a serving process repeats in the background: flushing what it tallied in memory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable


@contextlib.asynccontextmanager
async def periodically(seconds: float, action: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Run ``action`` every ``seconds`` while the block runs, and once more when it ends."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            await action()

    task = asyncio.get_running_loop().create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await action()
