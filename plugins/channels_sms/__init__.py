"""The ``sms`` channel, with its providers: Alibaba Cloud, Tencent Cloud and a generic HTTP gateway.

Chinese SMS carries a signature (签名) and only pre-approved templates: a chain
maps each message kind to the provider's template code and its parameters
(each a Jinja expression over the message's variables)::

    channels:
      sms:
        provider: aliyun                       # aliyun | tencent | http
        access_key_id: ${ALIYUN_ACCESS_KEY_ID}
        access_key_secret: ${ALIYUN_ACCESS_KEY_SECRET}
        sign_name: 康华医疗
        templates:
          milestone: {code: SMS_480000001, params: {name: "{{ salutation }}", link: "{{ link }}"}}

The providers' official SDKs are optional extras (``pip install
'clinic-followup[aliyun]'`` / ``[tencent]``). The ``http`` provider posts the
rendered text as JSON to a gateway of the chain's choosing. See docs/channels.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core import Capabilities, Channel, DeliveryReport, Message, ProviderTemplate, Receipt, SignatureError, hookimpl

REQUIRED = {
    "aliyun": ("access_key_id", "access_key_secret", "sign_name"),
    "tencent": ("secret_id", "secret_key", "sdk_app_id", "sign_name"),
    "http": ("url",),
}


class SmsChannel(Channel):
    name = "sms"
    capabilities = Capabilities(address="phone", max_length=500, segment_length=70, links=True,
                                provider_templates=True, delivery_reports=True)

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", defer_build=True)
        provider: Literal["aliyun", "tencent", "http"]
        sign_name: str | None = None
        templates: dict[str, ProviderTemplate] = Field(default_factory=dict)
        timeout: float = 10
        # Alibaba Cloud
        access_key_id: str | None = None
        access_key_secret: str | None = None
        # Tencent Cloud
        secret_id: str | None = None
        secret_key: str | None = None
        sdk_app_id: str | None = None
        region: str = "ap-guangzhou"
        # both clouds: where the API is (tests point it at a local server)
        endpoint: str | None = None
        protocol: Literal["https", "http"] = "https"
        # generic HTTP gateway
        url: str | None = None
        token: str | None = None
        secret: str | None = Field(default=None, description="http: signs each request (X-Followup-Signature)")
        # delivery reports posted to /hooks/sms: checked against this shared secret
        report_secret: str | None = None

        @model_validator(mode="after")
        def _complete(self) -> SmsChannel.Settings:
            missing = [k for k in REQUIRED[self.provider] if not getattr(self, k)]
            if missing:
                raise ValueError(f"provider {self.provider} needs {', '.join(missing)}")
            return self

    def send(self, message: Message) -> Receipt:
        provider = self.settings.provider
        if provider != "http" and not message.template:
            return Receipt.failed(f"no {provider} template for message kind {message.kind!r} "
                                  f"(channels.{getattr(self, 'configured_name', 'sms')}.templates.{message.kind})")
        if provider == "aliyun":
            from plugins.channels_sms.aliyun import send_aliyun

            return send_aliyun(self.settings, message)
        if provider == "tencent":
            from plugins.channels_sms.tencent import send_tencent

            return send_tencent(self.settings, message)
        from plugins.channels_sms.gateway import send_http

        return send_http(self.settings, message)

    def reports(self, headers: dict[str, str], query: dict[str, str], body: bytes) -> list[DeliveryReport]:
        """Delivery reports pushed to /hooks/sms, signed ``X-Followup-Signature: hex(HMAC-SHA256(secret, body))``.

        Alibaba Cloud and Tencent Cloud push reports to a URL the chain registers
        with them; put it behind a relay that signs them, or use the gateway's own
        signature. Each item: ``{"id": provider message id, "delivered": bool, "error": "..."}``
        (also the providers' own fields: ``biz_id``/``success``/``err_msg``, ``sid``/``report_status``).
        """
        import hmac
        import json

        from core.channels import sign_hmac

        secret = self.settings.report_secret
        given = {k.lower(): v for k, v in headers.items()}.get("x-followup-signature", "")
        if not secret or not hmac.compare_digest(sign_hmac(secret, body), given):
            raise SignatureError("signature does not verify")
        try:
            items = json.loads(body or b"[]")
        except ValueError:
            raise SignatureError("body is not JSON") from None
        out = []
        for item in items if isinstance(items, list) else [items]:
            pid = item.get("id") or item.get("biz_id") or item.get("sid")
            if not pid:
                continue
            delivered = item.get("delivered", item.get("success", item.get("report_status") == "SUCCESS"))
            out.append(DeliveryReport(provider_id=str(pid), delivered=bool(delivered),
                                      error=item.get("error") or item.get("err_msg") or item.get("description")))
        return out


def classify_http(status: int, retry_after: Any = None) -> Receipt | None:
    """A provider's HTTP status: None when 2xx, else a retry (429, 5xx) or a failed message (other 4xx)."""
    if 200 <= status < 300:
        return None
    if status == 429:
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        return Receipt.retry("rate limited (HTTP 429)", retry_after=seconds)
    if status >= 500:
        return Receipt.retry(f"provider error (HTTP {status})")
    return Receipt.failed(f"refused (HTTP {status})")


class SmsPlugin:
    @hookimpl
    def followup_channels(self) -> list[type[Channel]]:
        return [SmsChannel]


plugin = SmsPlugin()
