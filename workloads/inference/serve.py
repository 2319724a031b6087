"""Server entry point: `python -m workloads.inference.serve` (the image runs it as `serve`).

Composition root: reads the settings, binds the listeners, runs uvicorn (uvloop + httptools).
MLCP_WORKERS > 1: this process supervises that many worker processes on the port instead
(workers.py); each of them runs what follows.
SIGTERM: /ping turns 503 at once, the listeners close (no new connections), requests in flight
finish (keep-alive connections are closed after their current response), then the process exits
with 0 — all within MLCP_DRAIN_TIMEOUT_S (25 s by default, under Kubernetes' 30 s grace period).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
from types import FrameType

import uvicorn

from workloads.inference.app import InferenceServer, ListenerRouter, create_app
from workloads.inference.errors import ConfigurationError
from workloads.inference.settings import ServerSettings
from workloads.inference.transport import CoalescingHttpToolsProtocol
from workloads.inference.workers import WorkerRole, bind_listener, supervise, worker_share

log = logging.getLogger("workloads.inference.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app about SIGTERM/SIGINT before uvicorn starts its drain."""

    def __init__(self, config: uvicorn.Config, inference: InferenceServer) -> None:
        super().__init__(config)
        self._inference = inference

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            log.info("signal %d: draining (no new connections, in-flight requests finish)", sig)
            self._inference.start_draining()
        super().handle_exit(sig, frame)


def configure_runtime(settings: ServerSettings) -> None:
    import torch

    torch.set_num_threads(settings.torch_threads)
    with contextlib.suppress(RuntimeError):  # already set once in this process
        torch.set_num_interop_threads(1)


def run(settings: ServerSettings, worker: WorkerRole | None = None) -> int:
    """One server process: the only one, or one of several workers (then `worker` says which)."""
    import torch  # here, not at the top: a supervisor of several workers never loads torch

    if worker is not None:  # the 429 limit is the server's: each worker takes its share
        share = worker_share(settings.max_concurrent_invocations, settings.workers)
        settings = dataclasses.replace(settings, max_concurrent_invocations=share)
    configure_runtime(settings)
    inference = create_app(settings, worker=worker)
    sockets = [bind_listener(settings.host, settings.port, reuse_port=worker is not None)]
    admin_port: int | None = None
    if inference.admin_app is not None:
        admin_socket = bind_listener(settings.admin_host, settings.admin_port, reuse_port=False)
        admin_port = admin_socket.getsockname()[1]
        sockets.append(admin_socket)
        log.warning(
            "fault injection is ON: admin endpoint on http://%s:%d/admin/fault", settings.admin_host, admin_port
        )
    log.info(
        "model server for %s v%s listening on %s:%d",
        settings.model_name,
        settings.model_version,
        settings.host,
        sockets[0].getsockname()[1],
    )
    config = uvicorn.Config(
        ListenerRouter(inference.data_app, inference.admin_app, admin_port),
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        proxy_headers=False,  # no proxy headers are read: skip the middleware on every request
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        timeout_keep_alive=30,
    )
    server = DrainingServer(config, inference)
    tasks = server.server_state.tasks  # one asyncio task per request, created when its headers arrive
    inference.data_app.requests_in_progress = tasks.__len__
    # uvicorn re-raises the signal it caught once it has drained; this handler makes that a clean exit.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with torch.inference_mode():  # the event loop's thread runs every forward pass: enter it once
            server.run(sockets=sockets)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0 if server.started else 1


def _ignore(signum: int, frame: FrameType | None) -> None:
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # SageMaker starts the container as `docker run <image> serve`; anything else is a mistake.
    if args and args != ["serve"]:
        print(f"usage: python -m workloads.inference.serve [serve]  (got {' '.join(args)})", file=sys.stderr)
        return 2
    try:
        settings = ServerSettings.from_env()
    except ConfigurationError as exc:
        print(f"model server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    worker = WorkerRole.from_env(settings)
    if settings.workers > 1 and worker is None:
        return supervise(settings)
    return run(settings, worker)


if __name__ == "__main__":
    sys.exit(main())
