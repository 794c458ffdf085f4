"""`huiliu agent add|token|list`: staff accounts from the command line (a newcomer's first step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main


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
