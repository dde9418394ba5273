"""A plugin that fails on import: loaded through a fake entry point by tests/test_plugin_contract.py."""

raise RuntimeError("garbage plugin exploded on import")
