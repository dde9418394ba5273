"""The ``email`` channel: the standard library's smtplib and email.message (STARTTLS, login, plain + HTML).

Settings (chain YAML)::

    channels:
      email:
        host: smtp.example.com
        port: 587
        starttls: true
        username: ${SMTP_USER}
        password: ${SMTP_PASSWORD}
        sender: "康华医疗 <followup@example.com>"

A 4xx answer, a timeout or a refused connection is a retry; a 5xx answer that
refuses the recipient or the message is a failed message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # imported where a message is sent: loading the plugin (every command) stays cheap
    import ssl

from core import Capabilities, Channel, Message, Receipt, hookimpl


class EmailChannel(Channel):
    name = "email"
    capabilities = Capabilities(address="email", links=True, html=True)

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", defer_build=True)
        host: str
        port: int = 587
        starttls: bool = True
        ssl: bool = Field(default=False, description="implicit TLS (port 465) instead of STARTTLS")
        username: str | None = None
        password: str | None = None
        sender: str
        timeout: float = 15
        verify_tls: bool = Field(default=True, description="check the server's certificate (turn off only in tests)")

    def _tls(self) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context()
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def send(self, message: Message) -> Receipt:
        import smtplib
        from email.message import EmailMessage
        from email.utils import make_msgid

        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        domain = s.sender.rsplit("@", 1)[-1].strip(" >") or None
        mail["Message-ID"] = make_msgid(domain=domain)
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        try:
            if s.ssl:
                server: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls())
            else:
                server = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with server:
                if s.starttls and not s.ssl:
                    server.starttls(context=self._tls())
                if s.username:
                    server.login(s.username, s.password or "")
                server.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            text = f"recipient refused ({', '.join(map(str, codes))})"
            return Receipt.retry(text) if all(400 <= c < 500 for c in codes) else Receipt.failed(text)
        except smtplib.SMTPAuthenticationError as exc:
            return Receipt.retry(f"login refused ({exc.smtp_code}): check the username and password")
        except smtplib.SMTPResponseException as exc:
            text = f"server answered {exc.smtp_code}: {_text(exc.smtp_error)}"
            return Receipt.retry(text) if 400 <= exc.smtp_code < 500 else Receipt.failed(text)
        except (smtplib.SMTPException, OSError) as exc:
            return Receipt.retry(f"{type(exc).__name__}: {exc}")
        return Receipt.sent(mail["Message-ID"])


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class EmailPlugin:
    @hookimpl
    def followup_channels(self) -> list[type[Channel]]:
        return [EmailChannel]


plugin = EmailPlugin()
