"""A plugin whose import fails with patient data in its message (tests/test_plugin_contract.py)."""

raise RuntimeError("cannot reach patient 王秀英 at 13812345601 or 0086 139 1234 5678")
