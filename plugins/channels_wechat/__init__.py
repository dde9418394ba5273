"""The ``wechat`` channel: official-account template messages or subscription notices to a patient's openid.

Only the few documented HTTPS calls are needed, so no SDK:

* ``GET {api}/cgi-bin/token?grant_type=client_credential&appid=..&secret=..`` -> ``access_token`` (cached
  until shortly before ``expires_in``);
* template message: ``POST {api}/cgi-bin/message/template/send?access_token=..`` with
  ``{"touser", "template_id", "url", "data": {"key": {"value": ..}}}`` -> ``{"errcode": 0, "msgid": ..}``;
* subscription notice (订阅通知): ``POST {api}/cgi-bin/message/subscribe/bizsend?access_token=..`` with
  ``{"touser", "template_id", "page", "data"}``.

An expired token (40001, 40014, 42001) is fetched again and the message retried; ``-1`` (busy) and
45009 (frequency limit) are retried; a patient who unfollowed or refused (43004, 43101) or an invalid
openid (40003) fails the message. Delivery reports (``TEMPLATESENDJOBFINISH`` events) come to
``/hooks/wechat`` signed as WeChat documents: ``signature = sha1(sorted(token, timestamp, nonce))``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core import Capabilities, Channel, DeliveryReport, Message, ProviderTemplate, Receipt, SignatureError, hookimpl

TOKEN_ERRORS = (40001, 40014, 42001)
RETRY_ERRORS = (-1, 45009, 45011)
_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}
_LOCK = threading.Lock()


class WechatChannel(Channel):
    name = "wechat"
    capabilities = Capabilities(address="wechat_openid", max_length=200, links=True, provider_templates=True,
                                delivery_reports=True)

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", defer_build=True)
        app_id: str
        app_secret: str
        mode: Literal["template", "subscribe"] = "template"
        templates: dict[str, ProviderTemplate] = Field(default_factory=dict)
        api: str = "https://api.weixin.qq.com"
        token: str | None = Field(default=None, description="the server Token configured in the official account")
        timeout: float = 10

    def _get(self, url: str) -> dict[str, Any]:
        import urllib.request  # here, not at the top: loading the plugin (every command) stays cheap

        with urllib.request.urlopen(url, timeout=self.settings.timeout) as response:
            return json.loads(response.read() or b"{}")

    def _post(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        import urllib.request

        data = json.dumps(payload, ensure_ascii=False).encode()
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
            return json.loads(response.read() or b"{}")

    def access_token(self, fresh: bool = False) -> str:
        s = self.settings
        key = (s.api, s.app_id)
        with _LOCK:
            cached = _TOKENS.get(key)
            if cached and not fresh and cached[1] > time.time():
                return cached[0]
        query = urllib.parse.urlencode({"grant_type": "client_credential", "appid": s.app_id, "secret": s.app_secret})
        answer = self._get(f"{s.api}/cgi-bin/token?{query}")
        token = answer.get("access_token")
        if not token:
            raise _WechatError(int(answer.get("errcode", -1)), str(answer.get("errmsg", "no access_token")))
        with _LOCK:
            _TOKENS[key] = (token, time.time() + max(60, int(answer.get("expires_in", 7200)) - 300))
        return token

    def send(self, message: Message) -> Receipt:
        import urllib.error

        if not message.template:
            return Receipt.failed(f"no wechat template for message kind {message.kind!r} "
                                  f"(channels.{getattr(self, 'configured_name', 'wechat')}.templates.{message.kind})")
        s = self.settings
        payload: dict[str, Any] = {
            "touser": message.to, "template_id": message.template,
            "data": {k: {"value": v} for k, v in message.params.items()},
        }
        path = "/cgi-bin/message/template/send" if s.mode == "template" else "/cgi-bin/message/subscribe/bizsend"
        if message.link:
            payload["url" if s.mode == "template" else "page"] = message.link
        for fresh in (False, True):
            try:
                token = self.access_token(fresh=fresh)
                answer = self._post(f"{s.api}{path}?access_token={urllib.parse.quote(token)}", payload)
            except _WechatError as exc:
                answer = {"errcode": exc.code, "errmsg": exc.text}
            except urllib.error.HTTPError as exc:
                if exc.code == 429 or exc.code >= 500:
                    return Receipt.retry(f"HTTP {exc.code}")
                return Receipt.failed(f"refused (HTTP {exc.code})")
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                return Receipt.retry(f"WeChat unreachable: {getattr(exc, 'reason', exc)}")
            code = int(answer.get("errcode", 0) or 0)
            if code == 0:
                msgid = answer.get("msgid")
                return Receipt.sent(str(msgid) if msgid is not None else None)
            text = f"errcode {code}: {answer.get('errmsg', '')}"
            if code in TOKEN_ERRORS and not fresh:
                continue
            return Receipt.retry(text) if code in RETRY_ERRORS or code in TOKEN_ERRORS else Receipt.failed(text)
        return Receipt.retry("access token refused")  # pragma: no cover - loop always returns

    def verify(self, query: dict[str, str]) -> None:
        token = self.settings.token
        parts = sorted([token or "", query.get("timestamp", ""), query.get("nonce", "")])
        expected = hashlib.sha1("".join(parts).encode()).hexdigest()
        if not token or not hmac.compare_digest(expected, query.get("signature", "")):
            raise SignatureError("signature does not verify")

    def reports(self, headers: dict[str, str], query: dict[str, str], body: bytes) -> list[DeliveryReport]:
        from xml.etree import ElementTree

        self.verify(query)
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise SignatureError("body is not an XML event") from None
        if root.findtext("Event") != "TEMPLATESENDJOBFINISH":
            return []
        status = root.findtext("Status") or ""
        msgid = root.findtext("MsgID") or root.findtext("MsgId") or ""
        return [DeliveryReport(provider_id=msgid, delivered=status == "success",
                               error=None if status == "success" else status)]


class _WechatError(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code, self.text = code, text


class WechatPlugin:
    @hookimpl
    def followup_channels(self) -> list[type[Channel]]:
        return [WechatChannel]


plugin = WechatPlugin()
