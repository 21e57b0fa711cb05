"""`leadbot serve --workers N`: N forked processes accepting on one listening socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from types import FrameType

from aiohttp import web

log = logging.getLogger("leadbot.workers")

SHUTDOWN_TIMEOUT = 30.0  # seconds in-flight requests get to finish on SIGTERM, any worker count
WORKER_HEADER = "X-Leadbot-Worker"  # which process answered: the pid, for operators and tests
ORPHAN_CHECK_SECONDS = 1.0


def listen(host: str, port: int) -> socket.socket:
    """Bind in the parent, so that a taken port fails once, before any worker starts, and
    every worker accepts on the same socket: the kernel hands each connection to one of them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(1024)
    except OSError:
        listening.close()
        raise
    listening.set_inheritable(True)
    return listening


def supervise(app: web.Application, listening: socket.socket, count: int) -> int:
    """Fork `count` workers, forward SIGTERM/SIGINT to them, and return once all have exited:
    0 after a requested stop, 1 when a worker died on its own (the others are stopped too, so
    that the service manager restarts the whole set rather than running short-handed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    alive: set[int] = set()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os._exit(_work(app, listening, parent))
        alive.add(pid)
    listening.close()
    stopping = False

    def forward(number: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in alive:
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while alive:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        alive.discard(pid)
        if not stopping:
            log.error(
                "worker %d exited on its own (%d): stopping the others",
                pid,
                os.waitstatus_to_exitcode(status),
            )
            code, stopping = 1, True
            for other in alive:
                _signal(other, signal.SIGTERM)
    return code


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: os.wait() reports it
        os.kill(pid, number)


def _work(app: web.Application, listening: socket.socket, parent: int) -> int:
    """One worker: serve the parent's socket until SIGTERM, or until the parent is gone."""
    try:
        # A process group of its own: a Ctrl-C at the terminal reaches the parent alone, which
        # forwards one SIGTERM; two signals would cut a worker's graceful stop short.
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        app.on_response_prepare.append(_name_the_worker)
        app.cleanup_ctx.append(_orphan_watch(parent))
        web.run_app(
            app, sock=listening, print=None, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None
        )
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


async def _name_the_worker(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WORKER_HEADER] = str(os.getpid())


def _orphan_watch(parent: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A worker whose parent was killed (kill -9 gives it no chance to forward) stops itself
    gracefully rather than serve on unsupervised."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async def watch() -> None:
            while os.getppid() == parent:
                await asyncio.sleep(ORPHAN_CHECK_SECONDS)
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    return context
