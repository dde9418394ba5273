"""Tencent Cloud SMS (API 2021-01-11, SendSms) through the official SDK ``tencentcloud-sdk-python-sms``.

The SDK signs each request (TC3-HMAC-SHA256). A number's ``Code`` is ``Ok``
with a ``SerialNo`` when accepted; ``RequestLimitExceeded``, ``LimitExceeded.*``
and ``InternalError.*`` are retried, other errors (authentication, parameters,
template or signature not approved) fail the message.
"""

from __future__ import annotations

from typing import Any

from core import Message, Receipt

RETRY_PREFIXES = ("RequestLimitExceeded", "LimitExceeded", "InternalError", "ServerNetworkError", "ClientNetworkError")


def send_tencent(settings: Any, message: Message) -> Receipt:
    try:
        from tencentcloud.common import credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import models, sms_client
    except ImportError:
        return Receipt.retry("the Tencent Cloud SDK is not installed: pip install 'clinic-followup[tencent]'")
    http = HttpProfile(protocol=settings.protocol, endpoint=settings.endpoint or "sms.tencentcloudapi.com",
                       reqTimeout=int(settings.timeout))
    client = sms_client.SmsClient(credential.Credential(settings.secret_id, settings.secret_key), settings.region,
                                  ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http))
    request = models.SendSmsRequest()
    request.SmsSdkAppId = settings.sdk_app_id
    request.SignName = settings.sign_name
    request.TemplateId = message.template
    request.TemplateParamSet = [str(v) for v in message.params.values()]  # in the template's {1}, {2}... order
    request.PhoneNumberSet = [message.to if message.to.startswith("+") else f"+86{message.to}"]
    request.SessionContext = str(message.id)
    try:
        response = client.SendSms(request)
    except TencentCloudSDKException as exc:
        code = str(exc.get_code() or "")
        text = f"{code}: {str(exc.get_message())[:200]}"
        return Receipt.retry(text) if code.startswith(RETRY_PREFIXES) else Receipt.failed(text)
    except Exception as exc:  # network, timeout
        return Receipt.retry(f"{type(exc).__name__}: {str(exc)[:200]}")
    status = (response.SendStatusSet or [None])[0]
    if status is None:
        return Receipt.retry("no send status in the answer")
    if status.Code == "Ok":
        return Receipt.sent(status.SerialNo)
    text = f"{status.Code}: {status.Message}"
    return Receipt.retry(text) if str(status.Code).startswith(RETRY_PREFIXES) else Receipt.failed(text)
