"""The ``regflow`` console script: the engine's command group plus ``regflow serve`` (the web app).

The engine CLI never imports Flask; this module adds the web command on top of it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
from waitress import serve as waitress_serve

from engine.cli import main as cli
from engine.cli.support import run


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="request threads (waitress)")
@click.option("--with-worker", is_flag=True, help="also run one `regflow worker` process so timers fire")
def serve(host: str, port: int, threads: int, with_worker: bool) -> None:
    """Start the web workbench (waitress WSGI server); Ctrl-C stops it (and its worker)."""
    from web import create_app  # noqa: PLC0415  (Flask loads for `regflow serve` only, not for every command)

    app = create_app()
    worker = None
    if with_worker:
        worker = subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], env=os.environ.copy())
        click.echo(f"worker started (pid {worker.pid})")
    # `kill` (SIGTERM) stops like Ctrl-C, so the worker below is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"regflow web on http://{host}:{port}/  (Ctrl-C to stop)")
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="regflow")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


def main() -> None:
    run(cli)


if __name__ == "__main__":
    main()
