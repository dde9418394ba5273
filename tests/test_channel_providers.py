"""Each channel against a local server that checks the request as the provider documents it.

Alibaba Cloud (ACS3-HMAC-SHA256 over the canonical request), Tencent Cloud (TC3-HMAC-SHA256 with the
derived key), WeChat (access token, then the template message), a generic HTTP gateway (HMAC of the
body), email (aiosmtpd: STARTTLS, login, plain and HTML). Every failure mode (timeout, 4xx, 5xx, rate
limit) ends as a retry or a failed message, never an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.channels import Message, Receipt

SMS = Message(id=7, channel="sms", kind="milestone", locale="zh_CN", to="+8613912345678", text="您好",
              template="SMS_480000001", params={"name": "李女士", "link": "http://x/q/1"})


def SILENT(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:  # noqa: N802 - a sentinel answer
    """A provider that takes the request and never answers: the client's own timeout must decide."""
    raise AssertionError("never called: the server holds the request until the test ends")


class Provider:
    """A local HTTP server: records requests, answers with ``answer(request) -> (status, headers, body)``.

    With ``SILENT`` it keeps the connection open without answering until the test ends (no sleeping).
    """

    def __init__(self, answer: Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes]]):
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.released = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                           "body": self.rfile.read(length) if length else b""}
                provider.requests.append(request)
                if provider.answer is SILENT:
                    provider.released.wait(60)  # until close(): the client has given up long before
                    return
                status, headers, body = provider.answer(request)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[Callable[..., Provider]]:
    made: list[Provider] = []

    def make(answer: Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes]]) -> Provider:
        made.append(Provider(answer))
        return made[-1]

    yield make
    for p in made:
        p.close()


def _json(status: int, data: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


def channel(name: str, **settings: Any) -> Any:
    from core.plugins import get_plugins

    cls = get_plugins().channels()[name]
    return cls(cls.Settings.model_validate(settings))


# -- Alibaba Cloud -------------------------------------------------------------------------------

AK, SK = "LTAI5tTestKeyId", "aliyun-test-secret"


def _pct(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def aliyun_signature_ok(request: dict[str, Any]) -> bool:
    """ACS3-HMAC-SHA256 as Alibaba Cloud documents it (V3 request signature)."""
    auth = request["headers"]["Authorization"]
    algorithm, rest = auth.split(" ", 1)
    fields = dict(part.split("=", 1) for part in rest.split(","))
    headers = {k.lower(): v for k, v in request["headers"].items()}
    url = urllib.parse.urlsplit(request["path"])
    pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
    query = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(pairs))
    signed = fields["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed)
    payload = hashlib.sha256(request["body"]).hexdigest()
    if headers.get("x-acs-content-sha256") != payload:
        return False
    canonical = "\n".join([request["method"], url.path or "/", query, canonical_headers, fields["SignedHeaders"],
                           payload])
    to_sign = f"{algorithm}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(SK.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return algorithm == "ACS3-HMAC-SHA256" and fields["Credential"] == AK and hmac.compare_digest(
        expected, fields["Signature"])


def aliyun(endpoint: str) -> Any:
    return channel("sms", provider="aliyun", access_key_id=AK, access_key_secret=SK, sign_name="康华医疗",
                   endpoint=endpoint, protocol="http", timeout=1)


def test_aliyun_sends_a_signed_sendsms_with_its_template(provider) -> None:
    def answer(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if not aliyun_signature_ok(request):
            return _json(400, {"Code": "SignatureDoesNotMatch", "Message": "bad signature"})
        return _json(200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "r1"})

    server = provider(answer)
    receipt = aliyun(server.endpoint).send(SMS)
    assert receipt == Receipt.sent("900619746936498440^0")
    request = server.requests[0]
    assert request["headers"]["x-acs-action"] == "SendSms" and request["headers"]["x-acs-version"] == "2017-05-25"
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request["path"]).query))
    params.update(urllib.parse.parse_qsl(request["body"].decode()))
    assert params["PhoneNumbers"] == "13912345678" and params["SignName"] == "康华医疗"
    assert params["TemplateCode"] == "SMS_480000001"
    assert json.loads(params["TemplateParam"]) == {"name": "李女士", "link": "http://x/q/1"}


def test_aliyun_wrong_secret_is_refused_by_the_signature_check(provider) -> None:
    server = provider(lambda r: _json(400, {"Code": "SignatureDoesNotMatch", "Message": "x"})
                      if not aliyun_signature_ok(r) else _json(200, {"Code": "OK", "BizId": "1"}))
    wrong = channel("sms", provider="aliyun", access_key_id=AK, access_key_secret="not-the-secret",
                    sign_name="康华医疗", endpoint=server.endpoint, protocol="http", timeout=1)
    receipt = wrong.send(SMS)
    assert receipt.status == "failed" and "SignatureDoesNotMatch" in (receipt.error or "")


@pytest.mark.parametrize(("answer", "status"), [
    (lambda r: _json(200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}), "retry"),
    (lambda r: _json(429, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."}),
     "retry"),
    (lambda r: _json(503, {"Code": "ServiceUnavailable", "Message": "busy"}), "retry"),
    (lambda r: _json(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}), "failed"),
    (SILENT, "retry"),  # no answer within the timeout
])
def test_aliyun_failure_modes_end_as_retry_or_failed(provider, answer, status) -> None:
    receipt = aliyun(provider(answer).endpoint).send(SMS)
    assert receipt.status == status, receipt


# -- Tencent Cloud -------------------------------------------------------------------------------

SID, SKEY = "AKIDtestSecretId", "tencent-test-secret"


def tencent_signature_ok(request: dict[str, Any]) -> bool:
    """TC3-HMAC-SHA256 as Tencent Cloud documents it (API 3.0 signature v3)."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    auth = headers["authorization"]
    algorithm, rest = auth.split(" ", 1)
    fields = dict(p.strip().split("=", 1) for p in rest.split(","))
    secret_id, date, service, terminator = fields["Credential"].split("/")
    signed = fields["SignedHeaders"]
    canonical_headers = "".join(f"{h}:{headers[h].strip().lower()}\n" for h in signed.split(";"))
    canonical = "\n".join(["POST", "/", "", canonical_headers, signed, hashlib.sha256(request["body"]).hexdigest()])
    timestamp = headers["x-tc-timestamp"]
    scope = f"{date}/{service}/{terminator}"
    to_sign = "\n".join([algorithm, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(("TC3" + SKEY).encode(), date), service), "tc3_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (algorithm == "TC3-HMAC-SHA256" and secret_id == SID and service == "sms"
            and hmac.compare_digest(expected, fields["Signature"]))


def tencent(endpoint: str) -> Any:
    return channel("sms", provider="tencent", secret_id=SID, secret_key=SKEY, sdk_app_id="1400006666",
                   sign_name="康华医疗", endpoint=endpoint, protocol="http", timeout=1)


def _tc(data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return _json(200, {"Response": {**data, "RequestId": "req-1"}})


def test_tencent_sends_a_signed_sendsms(provider) -> None:
    def answer(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if not tencent_signature_ok(request):
            return _tc({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"}})
        return _tc({"SendStatusSet": [{"SerialNo": "2640:4512", "PhoneNumber": "+8613912345678", "Fee": 1,
                                       "Code": "Ok", "Message": "send success", "IsoCode": "CN"}]})

    server = provider(answer)
    assert tencent(server.endpoint).send(SMS) == Receipt.sent("2640:4512")
    request = server.requests[0]
    assert request["headers"]["X-TC-Action"] == "SendSms" and request["headers"]["X-TC-Version"] == "2021-01-11"
    body = json.loads(request["body"])
    assert body["PhoneNumberSet"] == ["+8613912345678"] and body["SmsSdkAppId"] == "1400006666"
    assert body["TemplateId"] == "SMS_480000001" and body["TemplateParamSet"] == ["李女士", "http://x/q/1"]


@pytest.mark.parametrize(("answer", "status"), [
    (lambda r: _tc({"Error": {"Code": "RequestLimitExceeded", "Message": "too fast"}}), "retry"),
    (lambda r: _tc({"SendStatusSet": [{"Code": "LimitExceeded.PhoneNumberDailyLimit", "Message": "x",
                                       "SerialNo": ""}]}), "retry"),
    (lambda r: _tc({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"}}), "failed"),
    (lambda r: _tc({"SendStatusSet": [{"Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "x",
                                       "SerialNo": ""}]}), "failed"),
    (lambda r: (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"), "retry"),
    (SILENT, "retry"),  # no answer within the timeout
])
def test_tencent_failure_modes_end_as_retry_or_failed(provider, answer, status) -> None:
    receipt = tencent(provider(answer).endpoint).send(SMS)
    assert receipt.status == status, receipt


# -- WeChat --------------------------------------------------------------------------------------


def test_wechat_fetches_a_token_then_sends_the_template_message(provider) -> None:
    tokens = iter(["TOKEN-1", "TOKEN-2"])

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        url = urllib.parse.urlsplit(request["path"])
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/cgi-bin/token":
            ok = query == {"grant_type": "client_credential", "appid": "wx123", "secret": "wxsecret"}
            return _json(200, {"access_token": next(tokens), "expires_in": 7200} if ok else {"errcode": 40125})
        if url.path == "/cgi-bin/message/template/send":
            if query.get("access_token") == "TOKEN-1":
                return _json(200, {"errcode": 42001, "errmsg": "access_token expired"})
            body = json.loads(request["body"])
            assert body["touser"] == "oUser123456" and body["template_id"] == "tmpl-1"
            assert body["data"] == {"thing1": {"value": "李女士"}} and body["url"] == "http://x/q/1"
            return _json(200, {"errcode": 0, "errmsg": "ok", "msgid": 200228332})
        return 404, {}, b""

    server = provider(answer)
    wechat = channel("wechat", app_id="wx123", app_secret="wxsecret", api=f"http://{server.endpoint}",
                     token="server-token", timeout=2)
    message = Message(id=8, channel="wechat", kind="milestone", locale="zh_CN", to="oUser123456", text="x",
                      template="tmpl-1", params={"thing1": "李女士"}, link="http://x/q/1")
    assert wechat.send(message) == Receipt.sent("200228332")  # an expired token is fetched again once


@pytest.mark.parametrize(("code", "status"), [(45009, "retry"), (-1, "retry"), (43004, "failed"), (40003, "failed")])
def test_wechat_errors_end_as_retry_or_failed(provider, code, status) -> None:
    def answer(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if request["path"].startswith("/cgi-bin/token"):
            return _json(200, {"access_token": f"T{code}", "expires_in": 7200})
        return _json(200, {"errcode": code, "errmsg": "x"})

    server = provider(answer)
    wechat = channel("wechat", app_id=f"wx{code}", app_secret="s", api=f"http://{server.endpoint}", timeout=2)
    message = Message(id=9, channel="wechat", kind="notice", locale="zh_CN", to="oUser123456", text="x",
                      template="tmpl-2", params={"thing1": "x"})
    assert wechat.send(message).status == status


def test_wechat_delivery_report_signature(provider) -> None:
    from core.channels import SignatureError

    wechat = channel("wechat", app_id="wx1", app_secret="s", token="server-token")
    query = {"timestamp": "1395658920", "nonce": "42"}
    query["signature"] = hashlib.sha1("".join(sorted(["server-token", "1395658920", "42"])).encode()).hexdigest()
    body = (b"<xml><ToUserName>gh_1</ToUserName><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event>"
            b"<MsgID>200163836</MsgID><Status>success</Status></xml>")
    [report] = wechat.reports({}, query, body)
    assert report.provider_id == "200163836" and report.delivered
    with pytest.raises(SignatureError):
        wechat.reports({}, {**query, "signature": "0" * 40}, body)


# -- generic HTTP gateway --------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "status"), [
    (lambda r: _json(200, {"id": "gw-1"}), "sent"),
    (lambda r: _json(429, {"error": "slow down"}, **{"Retry-After": "120"}), "retry"),
    (lambda r: _json(500, {"error": "boom"}), "retry"),
    (lambda r: _json(400, {"error": "bad number"}), "failed"),
    (SILENT, "retry"),  # no answer within the timeout
])
def test_http_gateway_signs_the_body_and_classifies_answers(provider, answer, status) -> None:
    server = provider(answer)
    gateway = channel("sms", provider="http", url=f"http://{server.endpoint}/send", token="tok", secret="gw-secret",
                      timeout=1)
    receipt = gateway.send(SMS)
    assert receipt.status == status, receipt
    request = server.requests[0]
    assert request["headers"]["Authorization"] == "Bearer tok"
    expected = hmac.new(b"gw-secret", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Followup-Signature"] == expected
    assert json.loads(request["body"])["text"] == "您好"
    if status == "retry" and "429" in (receipt.error or ""):
        assert receipt.retry_after == 120


def test_unreachable_gateway_is_a_retry() -> None:
    gateway = channel("sms", provider="http", url="http://127.0.0.1:9/send", timeout=1)
    assert gateway.send(SMS).status == "retry"


# -- email ---------------------------------------------------------------------------------------


def test_email_uses_starttls_login_and_sends_plain_and_html(tmp_path) -> None:
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append((session.authenticated, envelope))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"clinic" and data.password == b"pw"
        return AuthResult(success=ok)

    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd checks its own start by connecting to it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    try:
        email = channel("email", host="127.0.0.1", port=port, username="clinic", password="pw",
                        sender="康华医疗 <followup@kanghua.example>", verify_tls=False, timeout=5)
        message = Message(id=3, channel="email", kind="milestone", locale="en", to="li.na@example.com",
                          text="Please answer: http://x/q/1", subject="Kanghua: check", html="<p>Please</p>")
        receipt = email.send(message)
        assert receipt.status == "sent" and receipt.provider_id
        [(authenticated, envelope)] = received
        assert authenticated and envelope.rcpt_tos == ["li.na@example.com"]
        content = envelope.content.decode()
        assert "text/plain" in content and "text/html" in content
        wrong = channel("email", host="127.0.0.1", port=port, username="clinic", password="no",
                        sender="followup@kanghua.example", verify_tls=False, timeout=5)
        assert wrong.send(message).status == "retry"  # login refused: a retry, then failed after max tries
    finally:
        controller.stop()
    closed = channel("email", host="127.0.0.1", port=port, sender="f@kanghua.example", timeout=2)
    assert closed.send(message).status == "retry"


# -- the followup_channels hook -------------------------------------------------------------------


def test_followup_channels_lists_the_built_in_channels_and_plugins_list_shows_them() -> None:
    from core.plugins import build_plugins

    plugins = build_plugins()
    assert {"file", "email", "sms", "wechat"} <= set(plugins.channels())
    listed = {p["name"]: p for p in plugins.list_plugins()}
    assert listed["channels_sms"]["channels"] == ["sms"] and listed["channels_sms"]["specialties"] == []


def test_followup_channels_duplicate_name_and_garbage_name_the_plugin() -> None:
    from core import Capabilities, Channel, Receipt
    from core.general import CorePlugin
    from core.hookspecs import hookimpl
    from core.plugins import PluginError, Plugins

    class Loud(Channel):
        name = "sms"
        capabilities = Capabilities(address="phone")

        def send(self, message: Message) -> Receipt:
            return Receipt.sent()

    class Mine:
        @hookimpl
        def followup_channels(self) -> list[type[Channel]]:
            return [Loud]

    class Garbage:
        @hookimpl
        def followup_channels(self) -> list[Any]:
            return ["not a channel"]

    plugins = Plugins()
    plugins.register(CorePlugin(), "core")
    plugins.register(Mine(), "chain_sms")
    plugins.register(Mine(), "other_sms")
    with pytest.raises(PluginError, match="also provided by plugin 'chain_sms'"):
        plugins.channels()
    plugins.unregister("other_sms")
    plugins.register(Garbage(), "garbage")
    with pytest.raises(PluginError, match="plugin 'garbage', hook followup_channels"):
        plugins.channels()


def test_config_check_names_missing_credentials_and_unknown_channel_plugins(cli, tmp_path) -> None:
    import shutil

    folder = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[1] / "config", folder)
    chain = folder / "chain.yaml"
    text = chain.read_text(encoding="utf-8").replace(
        "  sms: {plugin: file, folder: var/messages}",
        "  sms: {provider: aliyun, access_key_id: '${CH_TEST_AK}', access_key_secret: '${CH_TEST_SK}', "
        "sign_name: 康华医疗}")
    chain.write_text(text, encoding="utf-8")
    result = cli("config", "check", config=chain)
    assert "CH_TEST_AK is not set" in result.output and "CH_TEST_SK" in result.output
    chain.write_text(text.replace("provider: aliyun,", "plugin: smss, provider: aliyun,"), encoding="utf-8")
    bad = cli("config", "check", config=chain, ok=False)
    assert bad.exit_code == 1 and "no channel plugin 'smss'" in bad.output and "chain.yaml:" in bad.output


def test_conformance_kit_renders_messages_and_counts_sms_segments(tmp_path) -> None:
    from core.plugins import get_plugins
    from core.protocol import Milestone
    from core.testing import message_problems

    plugins = get_plugins()
    spec = plugins.specialty("dental")
    proc = spec.procedure("scaling")
    base = next(m for _, m in plugins.milestones("dental", "scaling") if m.key == "check_1d")
    assert base.after_unsuccessful == "sms"
    assert message_problems(plugins, "dental", proc, base) == []
    long_names = base.model_copy(update={"names": base.names.model_copy(update={"zh_CN": "洁牙" * 60})})
    long = Milestone.model_validate({**long_names.model_dump(), "channel": "sms", "after_unsuccessful": None})
    [problem] = message_problems(plugins, "dental", proc, long)
    assert "milestone message (zh_CN)" in problem and "SMS segments" in problem


def test_a_site_changes_the_chains_channel_keys_and_templates_kind_by_kind(tmp_path) -> None:
    import shutil

    from core.config import load_config

    folder = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[1] / "config", folder)
    chain = folder / "chain.yaml"
    chain.write_text(chain.read_text(encoding="utf-8").replace(
        "  sms: {plugin: file, folder: var/messages}",
        "  sms: {provider: http, url: 'https://gw.example/send', sign_name: 康华医疗,\n"
        "        templates: {notice: {code: T1, params: {a: '{{ salutation }}'}}, milestone: {code: T2}}}"),
        encoding="utf-8")
    site = folder / "sites" / "sh-aes.yaml"
    site.write_text(site.read_text(encoding="utf-8") + "channels:\n  sms:\n    sign_name: 康华医美\n"
                    "    templates: {notice: {code: AES1}}\n", encoding="utf-8")
    config = load_config(chain)
    aes, dent = config.site("SH-AES").channels["sms"], config.site("SH-DENT").channels["sms"]
    assert aes["sign_name"] == "康华医美" and dent["sign_name"] == "康华医疗"
    assert aes["templates"] == {"notice": {"code": "AES1"}, "milestone": {"code": "T2"}}
    assert dent["templates"]["notice"]["code"] == "T1" and aes["url"] == dent["url"]
