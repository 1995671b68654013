"""A replicated Redis watched by Sentinel, made of real processes: for the failover tests and
the durability benchmark.

``SentinelGroup.start`` runs a primary, its replicas (``redis-server --replicaof``) and three
sentinels (``redis-server <conf> --sentinel``, quorum 2, ``down-after-milliseconds`` 1000),
each on a free loopback port with a directory of its own, and returns once every sentinel
knows the replicas and the other sentinels (so a failover can be elected). ``stop`` ends
every process it started, stopped (SIGSTOP) or not.

Two replicas by default: with ``VOICEBOT_REDIS_MIN_REPLICAS=1`` the bot needs a replica after
the failover too, as a deployment that keeps that setting does.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

MASTER = "voicebot-primary"
DOWN_AFTER_MS = 1000
# A failover that found no replica to promote is tried again after twice this.
FAILOVER_TIMEOUT_MS = 2000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    """One redis-server process (a data node or a sentinel)."""

    port: int
    process: subprocess.Popen[bytes]
    password: str | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=1,
        )

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to close connections or hand anything over."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing (a hung replica)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


def _start(
    binary: str,
    workdir: Path,
    args: list[str],
    password: str | None = None,
    port: int | None = None,
) -> Node:
    port = port or _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 - redis-server from PATH
        [
            binary,
            *args,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(workdir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node = Node(port, process, password)
    deadline = time.monotonic() + 10
    while not node.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            node.kill()
            raise RuntimeError(f"redis-server did not start (see {workdir / 'redis.log'})")
        time.sleep(0.05)
    return node


@dataclass
class SentinelGroup:
    primary: Node
    replicas: list[Node]
    sentinels: list[Node]
    master: str = MASTER
    password: str | None = None
    sentinel_password: str | None = None
    _all: list[Node] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        replicas: int = 2,
        password: str | None = None,
        sentinel_password: str | None = None,
    ) -> SentinelGroup:
        """``password``: the data nodes' (``requirepass``, and ``masterauth`` for replicas);
        ``sentinel_password``: the sentinels' own (``requirepass`` in their configuration)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        started: list[Node] = []
        try:
            data_args = ["--requirepass", password, "--masterauth", password] if password else []
            # A primary waits 5 s by default for more replicas before a diskless full sync;
            # every data node here may become the primary, and starts syncing at once.
            data_args += ["--repl-diskless-sync-delay", "0"]
            primary = _start(binary, directory / "primary", data_args, password)
            started.append(primary)
            copies = []
            for index in range(replicas):
                copy = _start(
                    binary,
                    directory / f"replica{index}",
                    ["--replicaof", "127.0.0.1", str(primary.port), *data_args],
                    password,
                )
                started.append(copy)
                copies.append(copy)
            watchers = []
            # Each sentinel is told the others (their ids and ports, as a sentinel writes them
            # to its own configuration once it has heard their hellos), so the group is whole
            # at once rather than after a round of hellos.
            ports = [_free_port() for _ in range(3)]
            ids = [secrets.token_hex(20) for _ in range(3)]
            for index in range(3):
                conf = directory / f"sentinel{index}" / "sentinel.conf"
                conf.parent.mkdir(parents=True, exist_ok=True)
                others = "".join(
                    f"sentinel known-sentinel {MASTER} 127.0.0.1 {ports[i]} {ids[i]}\n"
                    for i in range(3)
                    if i != index
                )
                conf.write_text(
                    f"sentinel myid {ids[index]}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2\n"
                    + others
                    + f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                    f"sentinel parallel-syncs {MASTER} {max(1, replicas)}\n"
                    + (f"sentinel auth-pass {MASTER} {password}\n" if password else "")
                    + (
                        f"requirepass {sentinel_password}\nsentinel sentinel-pass "
                        f"{sentinel_password}\n"
                        if sentinel_password
                        else ""
                    )
                )
                watcher = _start(
                    binary,
                    conf.parent,
                    [str(conf), "--sentinel"],
                    sentinel_password,
                    port=ports[index],
                )
                started.append(watcher)
                watchers.append(watcher)
        except BaseException:
            for node in started:
                node.kill()
            raise
        group = cls(
            primary,
            copies,
            watchers,
            password=password,
            sentinel_password=sentinel_password,
            _all=started,
        )
        try:
            group._wait_until_watched(len(copies))
        except BaseException:
            group.stop()
            raise
        return group

    def _wait_until_watched(self, replicas: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while True:
            if all(self._watches(sentinel, replicas) for sentinel in self.sentinels):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels did not discover each other and the replicas")
            time.sleep(0.1)

    def _watches(self, sentinel: Node, replicas: int) -> bool:
        with sentinel.client() as client:
            state = client.sentinel_master(self.master)
            known = client.sentinel_slaves(self.master)
        up = [
            r for r in known if "s_down" not in r["flags"] and r.get("master-link-status") == "ok"
        ]
        return int(state["num-other-sentinels"]) >= len(self.sentinels) - 1 and len(up) >= replicas

    @property
    def sentinel_hosts(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)

    def env(self) -> dict[str, str]:
        """The bot's settings for this group. REDIS_URL names a host where nothing listens:
        only its database number counts once REDIS_SENTINELS is set."""
        env = {"REDIS_SENTINELS": self.sentinel_hosts, "REDIS_SENTINEL_MASTER": self.master}
        if self.password:
            env["REDIS_PASSWORD"] = self.password
        if self.sentinel_password:
            env["REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        return env

    def primary_port(self) -> int | None:
        """The primary's port as the first answering sentinel names it."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    address = client.sentinel_get_master_addr_by_name(self.master)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def node(self, port: int) -> Node:
        return next(node for node in self._all if node.port == port)

    def failed_over(self) -> bool:
        """A replica is the primary now, and it answers as one."""
        port = self.primary_port()
        if port is None or port == self.primary.port:
            return False
        try:
            with self.node(port).client() as client:
                return str(client.info("replication")["role"]) == "master"
        except redis.RedisError:
            return False

    def stop(self) -> None:
        for node in self._all:
            node.kill()

    def primary_down(self) -> bool:
        """The sentinels agree the primary is down (objectively): no primary is known until
        a replica is promoted."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    if "o_down" in str(client.sentinel_master(self.master)["flags"]):
                        return True
            except redis.RedisError:
                continue
        return False
