"""A working plugin for entry-point tests: the test dental protocol in ``tests/data/plugins/dental``."""

from pathlib import Path

from core import ProtocolPlugin

plugin = ProtocolPlugin("mini_plugin", root=Path(__file__).parents[1] / "plugins" / "dental")
