"""optuna-dashboard over the tuner's storage, with the trial artifact store attached.

``tuner dashboard`` (and ``make dashboard``) serve optuna-dashboard 0.21 through
its WSGI entry point, :func:`optuna_dashboard.wsgi`, with the same storage as
``tuner tune`` (``--storage``, else ``$OPTUNA_STORAGE``, else the embedded
SQLite file) and the same :class:`~optuna.artifacts.FileSystemArtifactStore`
that trials upload their models to, so each trial's artifacts are listed and
downloadable in its page. The server is a threaded ``wsgiref`` server, as
``optuna-dashboard``'s own CLI uses, bound to 127.0.0.1 by default.

Failing to start (an unreachable database, a port in use) is a :class:`UserError`
with the reason, raised before anything is served, never a hang.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from tuner.base.errors import UserError
from tuner.base.runs import artifact_store, artifacts_dir
from tuner.base.settings import DEFAULT_RUNS, StorageSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    """No line per request: the browser's polling would flood the terminal."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Dashboard:
    """A bound, not yet serving, dashboard server; ``url`` is where to point the browser."""

    server: WSGIServer
    host: str
    port: int
    storage_description: str
    artifact_dir: Path
    studies: list[tuple[int, str]]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/dashboard/"

    def study_url(self, study_id: int) -> str:
        return f"{self.url}studies/{study_id}"

    def banner(self) -> str:
        lines = [
            f"optuna-dashboard on {self.storage_description}, artifacts in {self.artifact_dir}"
        ]
        for study_id, name in self.studies:
            lines.append(f"  study {name!r}: {self.study_url(study_id)}")
        if not self.studies:
            lines.append("  no study yet: run `make tune STUDY=smoke` (or `tuner tune smoke`)")
        lines.append(f"Open {self.url} in a browser (Ctrl-C to stop)")
        return "\n".join(lines)

    def serve_forever(self) -> None:
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()


def create_dashboard(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    artifact_dir: str | Path | None = None,
    runs_dir: Path = DEFAULT_RUNS,
    settings: StorageSettings | None = None,
) -> Dashboard:
    """Open the storage and the artifact store, build the app and bind the port.

    ``port=0`` binds a free port (tests); the bound one is in ``Dashboard.port``.
    """
    import optuna_dashboard

    from tuner.storage.optuna_compat import study_id
    from tuner.storage.rdb import describe, make_storage, resolve_url

    url = resolve_url(storage_url, runs_dir)
    storage = make_storage(url, settings)  # a UserError if the database does not answer
    directory = Path(artifact_dir) if artifact_dir is not None else artifacts_dir(runs_dir)
    store = artifact_store(directory)
    studies = [(study_id(s), s.study_name) for s in storage.get_all_studies()]
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    try:
        server = make_server(
            host, port, app, server_class=_ThreadedWSGIServer, handler_class=_QuietHandler
        )
    except OSError as err:
        hint = (
            "another program (a dashboard already running?) uses it; pick another with --port"
            if err.errno in (98, 48)  # EADDRINUSE on Linux, macOS
            else "check --host and --port"
        )
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}; {hint}") from None
    bound_port = server.server_address[1]
    return Dashboard(server, host, int(bound_port), describe(url), directory, studies)


def serve(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    artifact_dir: str | Path | None = None,
    runs_dir: Path = DEFAULT_RUNS,
    settings: StorageSettings | None = None,
    stream: TextIO | None = None,
) -> None:
    """Start the dashboard, say where to point the browser, serve until interrupted."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dashboard = create_dashboard(
        storage_url,
        host=host,
        port=port,
        artifact_dir=artifact_dir,
        runs_dir=runs_dir,
        settings=settings,
    )
    print(dashboard.banner(), file=stream or sys.stdout, flush=True)
    dashboard.serve_forever()
