"""Channel name -> connector class, resolved lazily so importing the registry imports no connector.

Adding a channel means adding one module and one line here; connectors never import each other.
"""

from __future__ import annotations

import importlib
from typing import Any

from gateway.models import Channel

_CLASSES: dict[Channel, str] = {
    Channel.WEBCHAT: "connectors.webchat:WebchatConnector",
    Channel.TELEGRAM: "connectors.telegram:TelegramConnector",
    # --- wechat (Official Account) ---
    Channel.WECHAT: "connectors.wechat:WeChatConnector",
    # --- wecom kf ---
    Channel.WECOM: "connectors.wecom_kf:WeComKfConnector",
    # --- email ---
    Channel.EMAIL: "connectors.email:EmailConnector",
    # --- marketplaces and signed webhook ---
    Channel.WEBHOOK: "connectors.signed_webhook:SignedWebhookConnector",
    Channel.TAOBAO: "connectors.taobao:TaobaoAdapter",
    Channel.JD: "connectors.jd:JdAdapter",
    Channel.PINDUODUO: "connectors.pinduoduo:PinduoduoAdapter",
}


class UnknownChannel(LookupError):
    pass


def connector_class(channel: Channel) -> type[Any]:
    """Import and return the connector class for ``channel``."""
    try:
        target = _CLASSES[channel]
    except KeyError:
        raise UnknownChannel(f"no connector registered for channel {channel.value!r}") from None
    module_name, _, attr = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), attr)
    return cls


def registered() -> list[Channel]:
    return list(_CLASSES)


class Connectors:
    """The connector instances one process uses, by channel (built once at start)."""

    def __init__(self, instances: dict[Channel, Any]) -> None:
        self._instances = instances

    def get(self, channel: Channel) -> Any:
        try:
            return self._instances[channel]
        except KeyError:
            raise UnknownChannel(f"channel {channel.value!r} is not configured in this process") from None

    def __contains__(self, channel: Channel) -> bool:
        return channel in self._instances

    async def aclose(self) -> None:
        for conn in self._instances.values():
            await conn.aclose()
