"""Alibaba Cloud SMS (dysmsapi 2017-05-25, SendSms) through the official SDK ``alibabacloud-dysmsapi20170525``.

The SDK signs each request (ACS3-HMAC-SHA256). Its answer ``Code`` is ``OK``
with a ``BizId`` when the message was accepted; throttling (HTTP 429 /
``isv.BUSINESS_LIMIT_CONTROL``) and server errors are retried, other refusals
(an invalid number, a template not approved, a bad signature) fail the message.
"""

from __future__ import annotations

import json
from typing import Any

from core import Message, Receipt

RETRY_CODES = ("isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling", "isp.")


def _client(settings: Any) -> Any:
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi import utils_models

    config = utils_models.Config(
        access_key_id=settings.access_key_id, access_key_secret=settings.access_key_secret,
        endpoint=settings.endpoint or "dysmsapi.aliyuncs.com", protocol=settings.protocol,
        read_timeout=int(settings.timeout * 1000), connect_timeout=int(settings.timeout * 1000),
    )
    return Client(config)


def send_aliyun(settings: Any, message: Message) -> Receipt:
    try:
        from alibabacloud_dysmsapi20170525 import models
        from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
        from darabonba.runtime import RuntimeOptions
    except ImportError:
        return Receipt.retry("the Alibaba Cloud SDK is not installed: pip install 'clinic-followup[aliyun]'")
    to = message.to[3:] if message.to.startswith("+86") else message.to.lstrip("+")  # mainland numbers without +86
    request = models.SendSmsRequest(
        phone_numbers=to,
        sign_name=settings.sign_name, template_code=message.template,
        template_param=json.dumps(message.params, ensure_ascii=False), out_id=str(message.id),
    )
    try:
        response = _client(settings).send_sms_with_options(request, RuntimeOptions(autoretry=False))
    except ThrottlingException as exc:
        return Receipt.retry(f"throttled: {getattr(exc, 'code', '')}")
    except ClientException as exc:
        status, code = getattr(exc, "status_code", None), str(getattr(exc, "code", "") or "")
        if status == 429 or code.startswith(RETRY_CODES):
            return Receipt.retry(f"rate limited ({status}): {code}")
        return Receipt.failed(f"refused ({status}): {code or exc}")
    except Exception as exc:  # network, timeout, 5xx: the SDK's own exceptions
        return Receipt.retry(f"{type(exc).__name__}: {str(exc)[:200]}")
    body = response.body
    code = getattr(body, "code", None)
    if code == "OK":
        return Receipt.sent(body.biz_id)
    text = f"{code}: {getattr(body, 'message', '')}"
    if code and code.startswith(RETRY_CODES):
        return Receipt.retry(text)
    return Receipt.failed(text)
