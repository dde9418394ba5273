"""The ``file`` channel: each message becomes a file in a folder (demo, tests, a clinic trying channels out).

Settings (chain YAML)::

    channels:
      sms: {plugin: file, folder: var/outbox}

Files are written readable by their owner only (0600): they hold what a patient
would have received. The address is masked in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core import Capabilities, Channel, Message, Receipt, hookimpl


class FileChannel(Channel):
    name = "file"
    capabilities = Capabilities(address="none", links=True, html=True)

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", defer_build=True)
        folder: str = Field(min_length=1, description="where the messages are written (created 0700)")

    def send(self, message: Message) -> Receipt:
        from core.channels import mask_address

        folder = Path(self.settings.folder)
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"{message.id:06d}-{message.channel}-{message.kind}.txt"
            lines = [f"To: {mask_address(message.to)}", f"Channel: {message.channel}", f"Kind: {message.kind}"]
            if message.subject:
                lines.append(f"Subject: {message.subject}")
            if message.link:
                lines.append(f"Link: {message.link}")
            body = "\n".join(lines) + "\n\n" + message.text
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body if body.endswith("\n") else body + "\n")
            os.chmod(path, 0o600)
        except OSError as exc:
            return Receipt.retry(f"cannot write to {folder}: {exc.strerror or exc}")
        return Receipt.sent(str(path))


class FilePlugin:
    @hookimpl
    def followup_channels(self) -> list[type[Channel]]:
        return [FileChannel]


plugin = FilePlugin()
