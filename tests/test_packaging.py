"""What ships is what runs in production: ``bot/`` holds no stand-in, no local-run code and
no stand-in credential, and its entry points load nothing of ``sandbox/``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from sandbox.metastudio import LOCAL_AK, LOCAL_PROJECT_ID, LOCAL_SK

BOT = Path(__file__).resolve().parents[1] / "bot"


def test_no_production_module_imports_the_sandbox() -> None:
    offenders = []
    for path in BOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] == "sandbox"
            ]
    assert offenders == []


def test_the_entry_points_load_nothing_of_the_sandbox() -> None:
    probe = (
        "import sys, bot.__main__, bot.web, bot.worker, bot.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sandbox'))"
    )
    loaded = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"


def test_no_stand_in_credential_is_written_in_the_bot() -> None:
    texts = "\n".join(path.read_text() for path in BOT.rglob("*.py"))
    for credential in (LOCAL_AK, LOCAL_SK, LOCAL_PROJECT_ID, "xoxb-local", "local-signing-secret"):
        assert credential not in texts, credential
