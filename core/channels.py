"""Channels: how a message reaches a patient other than by phone (SMS, WeChat, email, a folder...).

A channel is contributed by a plugin through the collected hook
``followup_channels()``: each item is a subclass of :class:`Channel` with a
``name``, its :class:`Capabilities` (length limit, links, provider templates,
the address it needs) and ``send(message) -> Receipt``. The chain YAML's
``channels:`` section configures each one (a site may override keys)::

    channels:
      sms:
        plugin: sms             # the channel plugin that carries it (default: the same name)
        provider: aliyun
        access_key_id: ${ALIYUN_ACCESS_KEY_ID}
        access_key_secret: ${ALIYUN_ACCESS_KEY_SECRET}
        sign_name: 康华医疗
        templates:
          notice: {code: SMS_480000001, params: {name: "{{ salutation }}", time: "{{ call_time }}"}}

``${NAME}`` is read from the environment when a message is sent, never stored;
``followup config check`` names every variable that is missing.

A channel never sees the database: core hands it a :class:`Message` (address,
rendered text, provider template and parameters) and records the
:class:`Receipt`. A channel must not raise for a provider's answer: it returns
``Receipt.retry(...)`` (timeouts, 5xx, rate limits) or ``Receipt.failed(...)``
(a permanent refusal). An exception is treated as a retry, so a crash in a
plugin never loses or duplicates a message.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import FollowupError
from core.vocab import (
    MESSAGE_CHANNELS,  # noqa: F401  (re-exported; milestone channels sent by `followup send`)
    MessageKind,
    MessageStatus,
)

MESSAGE_KINDS: tuple[str, ...] = tuple(MessageKind)
OUTBOX_STATUSES: tuple[str, ...] = tuple(MessageStatus)
Address = Literal["phone", "email", "wechat_openid", "none"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CHINESE_SEGMENT = 70  # one SMS segment of Chinese text; a long SMS is billed per 67
LONG_SEGMENT = 67


class ChannelError(FollowupError):
    """A channel is misconfigured (unknown plugin, bad settings, missing credentials)."""


class Capabilities(BaseModel):
    """What a channel can carry."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    address: Address = Field(description="which of the patient's addresses it needs")
    max_length: int | None = Field(default=None, description="longest text it sends, in characters")
    segment_length: int | None = Field(default=None, description="characters per billed segment (SMS)")
    links: bool = True
    provider_templates: bool = Field(default=False, description="the provider sends only pre-approved templates")
    html: bool = False
    delivery_reports: bool = False


@dataclass
class Message:
    """One message as a channel sends it. ``to`` is the address the channel's capabilities ask for."""

    id: int
    channel: str
    kind: str
    locale: str
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    link: str | None = None
    template: str | None = None  # the provider's template code / id for this kind
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Receipt:
    """What happened to one send: ``sent`` (with the provider's id), ``retry`` or ``failed``."""

    status: Literal["sent", "retry", "failed"]
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, when the provider says (rate limits)

    @classmethod
    def sent(cls, provider_id: str | None = None) -> Receipt:
        return cls("sent", provider_id=provider_id)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> Receipt:
        return cls("retry", error=error, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str) -> Receipt:
        return cls("failed", error=error)


@dataclass
class DeliveryReport:
    """A provider's word on one sent message: delivered or failed."""

    provider_id: str
    delivered: bool
    error: str | None = None


class SignatureError(FollowupError):
    """A delivery report whose signature does not verify."""


class Channel:
    """Base of every channel plugin. Subclass, set ``name``, ``capabilities`` and ``Settings``, implement ``send``."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", defer_build=True)

    def __init__(self, settings: BaseModel):
        self.settings = settings

    def send(self, message: Message) -> Receipt:  # pragma: no cover - abstract
        raise NotImplementedError

    def reports(self, headers: dict[str, str], query: dict[str, str], body: bytes) -> list[DeliveryReport]:
        """Parse a delivery-report request to ``/hooks/<provider>``; raise :class:`SignatureError` when unsigned."""
        raise SignatureError(f"channel {self.name!r} takes no delivery reports")

    def template_for(self, kind: str) -> dict[str, Any] | None:
        """The provider template configured for a message kind (``templates:`` in the YAML), if any."""
        templates = getattr(self.settings, "templates", None) or {}
        entry = templates.get(kind)
        return entry.model_dump() if isinstance(entry, BaseModel) else entry


class ProviderTemplate(BaseModel):
    """A kind's pre-approved provider template: its code and the parameters, each a Jinja expression."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    code: str = Field(min_length=1)
    params: dict[str, str] = Field(default_factory=dict)


# -- settings -------------------------------------------------------------------------------


def env_names(value: Any) -> list[str]:
    """Every ``${NAME}`` named anywhere in a settings value."""
    if isinstance(value, str):
        return _ENV.findall(value)
    if isinstance(value, dict):
        return [n for v in value.values() for n in env_names(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in env_names(v)]
    return []


def substitute(value: Any, environ: dict[str, str] | None = None) -> Any:
    """Replace ``${NAME}`` by the environment's value; a missing one is a :class:`ChannelError`."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ChannelError(f"environment variable {name} is not set")
            return env[name]

        return _ENV.sub(one, value)
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    return value


def missing_env(settings: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return sorted({n for n in env_names(settings) if n not in env})


def segments(text: str) -> int:
    """Billed SMS segments: 70 characters fit one, a longer text goes in segments of 67 (UCS-2)."""
    n = len(text)
    if n <= CHINESE_SEGMENT:
        return 1
    return math.ceil(n / LONG_SEGMENT)


def sign_hmac(secret: str | bytes, data: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def mask_address(address: str | None) -> str:
    """An address for a list: phones masked like everywhere, e-mails and WeChat ids shortened."""
    if not address:
        return ""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"\D", "", address)
    if len(digits) >= 7 and len(digits) == len(address.lstrip("+")):
        from core.privacy import mask_phone

        return mask_phone(address)
    return f"{address[:4]}***" if len(address) > 6 else "***"


def channel_settings(site: Any, name: str, installed: dict[str, Any], *, environ: dict[str, str] | None = None,
                     check_only: bool = False) -> tuple[Any, BaseModel]:
    """The channel class configured for ``name`` at a site and its validated settings.

    ``check_only``: validate the YAML as written (``${NAME}`` left in place), for ``config check``.
    """
    from pydantic import ValidationError

    raw = dict(site.channels.get(name) or {})
    if not raw and name not in site.channels:
        raise ChannelError(f"channel {name!r} is not configured (add it under 'channels:' in the chain file)")
    plugin = raw.pop("plugin", name)
    cls = installed.get(plugin)
    if cls is None:
        raise ChannelError(f"no channel plugin {plugin!r} is installed (installed: {', '.join(installed) or 'none'})")
    values = raw if check_only else substitute(raw, environ)
    try:
        settings = cls.Settings.model_validate(values)
    except ValidationError as err:
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(value)'}: {e['msg']}" for e in err.errors())
        raise ChannelError(f"invalid settings for channel plugin {plugin!r}: {detail}") from None
    return cls, settings


def open_channel(site: Any, name: str, installed: dict[str, Any], environ: dict[str, str] | None = None) -> Channel:
    """A ready channel for ``name`` at ``site``, credentials read from the environment now."""
    cls, settings = channel_settings(site, name, installed, environ=environ)
    channel = cls(settings)
    channel.configured_name = name  # type: ignore[attr-defined]
    return channel
