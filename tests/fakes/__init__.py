"""Fakes of external services at their wire boundary (HTTP), for offline integration tests.

``telegram_api.FakeTelegram`` is a local Bot API server. There is deliberately no shared fixture
here; a test module (or a conftest) wires one up::

    @pytest.fixture
    async def fake_telegram() -> AsyncIterator[FakeTelegram]:
        fake = FakeTelegram(token=TOKEN)
        await fake.start()
        yield fake
        await fake.stop()

Import it as ``fakes.telegram_api`` with ``tests/`` on ``sys.path`` (see
``tests/connectors/test_telegram.py``): the name ``tests`` itself is shadowed by a stray ``tests``
package that a third-party wheel installs into site-packages.
"""

from .telegram_api import FakeTelegram, RecordedRequest, utf16_len

__all__ = ["FakeTelegram", "RecordedRequest", "utf16_len"]
