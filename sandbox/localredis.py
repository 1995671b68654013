"""Find a reachable Redis, or start Debian's ``redis-server`` on a free port (installing it).

Used by the local run and the test suite so both work on a machine with no Redis running.
A server started here keeps nothing on disk, unless asked for an append-only file in a given
directory (to restart it with its data, as a real Redis comes back from a crash), and is
stopped by ``LocalRedis.stop``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


def _reachable(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    # A password-protected server answers -NOAUTH, which still means a Redis is there.
    return reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _install_redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary:
        return binary
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("no Redis reachable and redis-server is not installed (no apt-get)")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run([apt, "update", "-qq"], check=True, env=env, capture_output=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [apt, "install", "-y", "-qq", "redis-server"], check=True, env=env, capture_output=True
    )
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server was installed but is not on PATH")
    return binary


@dataclass
class LocalRedis:
    """A Redis URL, and the server process if this module started it."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 6379

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL: as a crash, with no chance to close connections)."""
        if self.process is not None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def start_redis_server(port: int | None = None, *, data_dir: Path | None = None) -> LocalRedis:
    """Start a private server; pass ``port`` to restart one where a stopped one listened.

    With ``data_dir`` every write goes to an append-only file there (fsync'd at once, so
    even a SIGKILL loses nothing) and a server started again on that directory reloads it;
    the directory is the caller's to remove.
    """
    binary = _install_redis_server()
    port = port or _free_port()
    workdir: tempfile.TemporaryDirectory[str] | None = None
    if data_dir is None:
        workdir = tempfile.TemporaryDirectory(prefix="voicebot-redis-")
        directory, persistence = workdir.name, ["--appendonly", "no"]
    else:
        directory = str(data_dir)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"]
    process = subprocess.Popen(  # noqa: S603
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            *persistence,
            "--dir",
            directory,
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _reachable(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            if workdir is not None:
                workdir.cleanup()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return LocalRedis(url=url, process=process, _workdir=workdir)


def ensure_redis(preferred: str | None = None) -> LocalRedis:
    """Return the preferred URL if reachable, else 127.0.0.1:6379, else a server started here."""
    for url in (preferred, "redis://127.0.0.1:6379/0"):
        if url and _reachable(url):
            return LocalRedis(url=url)
    return start_redis_server()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 0 if a Redis is reachable")
    args = parser.parse_args()
    if args.check:
        raise SystemExit(0 if _reachable("redis://127.0.0.1:6379/0") else 1)


if __name__ == "__main__":
    main()
