"""``python -m sandbox`` as a person runs it: one URL line, a page and a health check that
answer, and Ctrl-C ending it with exit 0, no Redis keys left behind and no processes left
running. With real credentials in the environment it only says what to run instead.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from bot.settings import load_settings
from sandbox.dev import DEMO_APPROVER, DEMO_REQUESTER, new_key_prefix, real_run_instructions
from sandbox.metastudio import LOCAL_AK, LOCAL_SK

REPO = Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"^voicebot playground: (http://127\.0\.0\.1:\d+/)$")
STARTUP_DEADLINE = 20.0
STOP_DEADLINE = 15.0
OWN_VARIABLES = ("SLACK_", "VOICEBOT_", "HUAWEICLOUD_", "METASTUDIO_", "REDIS_URL", "PORT")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                return process.stdout.readline()
            if process.poll() is not None:
                break
    return ""


@pytest.fixture
def dev_process(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    log_file = tmp_path / "dev.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox"],
            env=_clean_env(REDIS_URL=redis_url, VOICEBOT_REDIS_PREFIX=redis_prefix, PORT="0"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            yield process, log_file
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
async def test_dev_prints_the_url_serves_the_playground_and_stops_cleanly(
    dev_process: tuple[subprocess.Popen[str], Path],
    redis_client: aioredis.Redis,
    redis_prefix: str,
    stop_signal: signal.Signals,
) -> None:
    process, log_file = dev_process
    line = _read_line(process, time.monotonic() + STARTUP_DEADLINE).rstrip("\n")
    match = URL_LINE.match(line)
    assert match, f"no URL line; stdout {line!r}; log:\n{log_file.read_text()}"
    url = match.group(1)

    async with httpx.AsyncClient(timeout=5) as http:
        page = await http.get(url)
        assert page.status_code == 200
        assert "voicebot playground" in page.text
        health = await http.get(f"{url}healthz")
        assert health.status_code == 200
        state = (await http.get(f"{url}playground/state")).json()
    assert state["connected"] is True
    assert {u["id"] for u in state["demo_users"]} >= {DEMO_REQUESTER.id, DEMO_APPROVER.id}
    assert len(state["jobs"]) == 6, "seeded from config/sandbox-jobs.json"

    keys = [k async for k in redis_client.scan_iter(match=f"*{redis_prefix}dev:*")]
    assert any(":roles:" in k for k in keys), keys
    children = _children(process.pid)

    process.send_signal(stop_signal)
    assert process.wait(STOP_DEADLINE) == 0, log_file.read_text()
    assert process.stdout is not None
    assert process.stdout.read() == "", "the URL line is the only line on stdout"
    assert [k async for k in redis_client.scan_iter(match=f"*{redis_prefix}*")] == []
    assert [pid for pid in children if _alive(pid)] == []
    log = log_file.read_text()
    assert "stopping" in log
    assert "Traceback" not in log


def test_dev_with_real_credentials_says_what_to_run_and_starts_nothing(
    redis_url: str, redis_prefix: str
) -> None:
    env = _clean_env(
        SLACK_BOT_TOKEN="xoxb-1234-real-looking-token",
        SLACK_SIGNING_SECRET="a-real-signing-secret",
        REDIS_URL=redis_url,
        VOICEBOT_REDIS_PREFIX=redis_prefix,
    )
    done = subprocess.run(
        [sys.executable, "-m", "sandbox"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "python -m bot serve" in done.stdout
    assert "python -m bot worker" in done.stdout
    assert "playground:" not in done.stdout
    assert "xoxb-1234" not in done.stdout + done.stderr
    assert "a-real-signing-secret" not in done.stdout + done.stderr


def test_only_credentials_for_real_services_turn_the_local_run_off() -> None:
    local = load_settings(
        huaweicloud_sdk_ak=LOCAL_AK,
        huaweicloud_sdk_sk=LOCAL_SK,
        metastudio_endpoint_override="http://127.0.0.1:8081",
    )
    assert real_run_instructions(local) is None
    local_slack = load_settings(slack_bot_token="xoxb-local", slack_api_url="http://127.0.0.1:9/")
    assert real_run_instructions(local_slack) is None
    cloud = load_settings(huaweicloud_sdk_ak="AKREAL", huaweicloud_sdk_sk="SKREAL")
    text = real_run_instructions(cloud)
    assert text is not None
    assert "Huawei Cloud credentials" in text
    assert "SKREAL" not in text
    socket_mode = load_settings(slack_bot_token="xoxb-9", slack_app_token="xapp-9")
    assert "python -m bot socket" in (real_run_instructions(socket_mode) or "")


def test_key_prefixes_are_unique_and_keep_a_chosen_prefix() -> None:
    assert new_key_prefix() != new_key_prefix()
    assert new_key_prefix().startswith("voicebot-dev:")
    assert new_key_prefix("team-a:").startswith("team-a:dev:")
