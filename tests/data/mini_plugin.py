"""A working plugin for entry-point tests: the test dental protocol in ``plugins/dental``."""

from pathlib import Path

from core import ProtocolPlugin

plugin = ProtocolPlugin("mini_plugin", root=Path(__file__).parent / "plugins" / "dental")
