"""A generic HTTP SMS gateway: the rendered text posted as JSON.

``POST <url>`` with ``{"id", "to", "text", "sign_name", "template", "params"}``,
``Authorization: Bearer <token>`` when a token is set and
``X-Followup-Signature: hex(HMAC-SHA256(secret, body))`` when a secret is set.
A 2xx answer may carry ``{"id": "<gateway message id>"}``. 429 and 5xx are
retried (``Retry-After`` honoured), other 4xx fail the message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from core import Message, Receipt


def send_http(settings: Any, message: Message) -> Receipt:
    from core.channels import sign_hmac
    from plugins.channels_sms import classify_http

    body = json.dumps({
        "id": message.id, "to": message.to, "text": message.text, "sign_name": settings.sign_name,
        "template": message.template, "params": message.params,
    }, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    if settings.secret:
        headers["X-Followup-Signature"] = sign_hmac(settings.secret, body)
    request = urllib.request.Request(settings.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        return classify_http(exc.code, exc.headers.get("Retry-After")) or Receipt.retry(f"HTTP {exc.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return Receipt.retry(f"gateway unreachable: {getattr(exc, 'reason', exc)}")
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        answer = {}
    return Receipt.sent(str(answer.get("id")) if isinstance(answer, dict) and answer.get("id") else None)
