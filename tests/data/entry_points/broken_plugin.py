"""A plugin that imports fine but whose ``protocol.yaml`` is invalid (offset outside its window)."""

from pathlib import Path

from core import ProtocolPlugin

plugin = ProtocolPlugin("broken_plugin", root=Path(__file__).parents[1] / "plugins" / "broken")
