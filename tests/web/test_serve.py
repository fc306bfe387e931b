"""`regflow serve --with-worker`: the web app over real HTTP plus one worker process; SIGTERM stops both."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_serve_with_worker_answers_and_stops_cleanly(web_env):
    port = _free_port()
    exe = Path(sys.executable).parent / "regflow"
    env = {**os.environ, "REGFLOW_DATABASE_URL": web_env.url, "REGFLOW_SECRET_KEY": "serve-test-key"}
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--with-worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert body == {"status": "ok"}
        login = requests.get(f"http://127.0.0.1:{port}/auth/login", timeout=5)
        assert login.status_code == 200 and "登录" in login.text
        workers = _children(proc.pid)
        assert len(workers) == 1, "exactly one worker process runs beside the web server"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "worker started" in out
    time.sleep(0.5)
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
