"""`huiliu agent add|token|passwd|list`: staff accounts from the command line (a newcomer's first step)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.db.engine import make_engine
from ticketing.agents import AgentDirectory


def test_agent_add_list_token_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUILIU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    assert main(["agent", "add", "li", "--skills", "logistics,VIP", "--max", "3"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert first.startswith("hl_")
    assert main(["agent", "list"]) == 0
    assert "li\tagent\tdefault\tmax 3\tlogistics,vip\tactive" in capsys.readouterr().out
    assert main(["agent", "token", "li"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] not in ("", first)
    assert main(["agent", "add", "li"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["agent", "add", "bad id!"]) == 2
    assert main(["agent", "token", "nobody"]) == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _check(tmp_path: Path, agent_id: str, password: str) -> bool:
    async def run() -> bool:
        engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
        try:
            return await AgentDirectory(engine).check_password(agent_id, password) is not None
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_agent_passwords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUILIU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    # add --password-stdin from a pipe: one line; the token is still printed
    monkeypatch.setattr("sys.stdin", io.StringIO("li-password\n"))
    assert main(["agent", "add", "li", "--password-stdin"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("hl_")
    assert _check(tmp_path, "li", "li-password")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["agent", "add", "wang", "--password-stdin"]) == 2
    assert "at least 8" in capsys.readouterr().err
    assert main(["agent", "list"]) == 0
    assert "wang" not in capsys.readouterr().out  # a refused password creates nothing

    # passwd from a pipe
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-password\r\n"))
    assert main(["agent", "passwd", "li"]) == 0
    assert "password set for li" in capsys.readouterr().out
    assert _check(tmp_path, "li", "piped-password") and not _check(tmp_path, "li", "li-password")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["agent", "passwd", "li"]) == 2
    assert "no password on stdin" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("nobody-password\n"))
    assert main(["agent", "passwd", "nobody"]) == 2

    # passwd on a terminal: typed twice, hidden
    monkeypatch.setattr("sys.stdin", _Tty())
    typed = iter(["typed-password", "typed-password", "first-try-xx", "second-try-yy"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(typed))
    assert main(["agent", "passwd", "li"]) == 0
    assert _check(tmp_path, "li", "typed-password")
    assert main(["agent", "passwd", "li"]) == 2
    assert "do not match" in capsys.readouterr().err
    assert _check(tmp_path, "li", "typed-password")
