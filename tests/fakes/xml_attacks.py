"""Hostile XML for callback parsers (XXE, parameter entities, external DTDs, billion laughs) and a
watch that proves no file was opened while handling them.

``OpenWatch`` uses a CPython audit hook: every ``open()`` (and every ``urllib`` request, which is how
SAX resolves ``file://`` entities) of a watched path is recorded. Audit hooks cannot be removed, so one
hook is installed on first use and only ever looks at paths registered by ``watch``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_WATCHED: set[str] = set()
_OPENED: list[str] = []
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in ("open", "urllib.Request") and args:
        target = str(args[0]).removeprefix("file://")
        if target in _WATCHED:
            _OPENED.append(target)


class OpenWatch:
    """``watch(path)``, do things, then ``opened()`` lists the watched paths something opened."""

    def __init__(self) -> None:
        global _installed
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        self._paths: set[str] = set()

    def watch(self, path: Path | str) -> str:
        self._paths.add(str(path))
        _WATCHED.add(str(path))
        return str(path)

    def opened(self) -> list[str]:
        return [p for p in _OPENED if p in self._paths]


def xxe_payloads(path: str, openid: str, create_time: int) -> list[str]:
    """WeChat-shaped bodies that try to pull ``path`` into a field, in the usual XXE variants."""
    fields = (f"<ToUserName>gh_x</ToUserName><FromUserName>{openid}</FromUserName>"
              f"<CreateTime>{create_time}</CreateTime><MsgType>text</MsgType>")
    return [
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file://{path}">]>'
        f"<xml>{fields}<Content>&xxe;</Content><MsgId>1</MsgId></xml>",
        f'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file://{path}"> %p;]><xml>{fields}<Content>x</Content></xml>',
        f'<!DOCTYPE xml SYSTEM "file://{path}"><xml>{fields}<Content>x</Content></xml>',
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "{path}">]><xml><Encrypt>&xxe;</Encrypt></xml>',
    ]


def billion_laughs(openid: str) -> str:
    """Ten levels of ten-fold entity expansion (10^9 "lol"s) if a parser expanded it."""
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol0 "lol">{entities}]>'
            f"<xml><FromUserName>{openid}</FromUserName><Content>&lol9;</Content></xml>")
