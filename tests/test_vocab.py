"""One vocabulary (DESIGN.md §8): task statuses, outcomes and urgencies are spelled in core/vocab.py only.

Code that compares with, or assigns, one of these words as a bare string literal would drift from the
named sets the reports and the day counts use; this test finds such literals in core and the plugins.
"""

from __future__ import annotations

import ast
from pathlib import Path

from core.vocab import Outcome, TaskStatus, Urgency

ROOT = Path(__file__).resolve().parents[1]
# The catalogue modules map these words to what people read: they are keyed by them on purpose.
ALLOWED = {"core/vocab.py", "core/words.py", "core/messages.py", "core/reports/labels.py"}
# "open" is also the status of an escalation or a complaint; those have their own small sets.
WORDS = ({str(s) for s in TaskStatus} | {str(o) for o in Outcome} | {str(u) for u in Urgency}) - {"open"}


def literal_uses(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    text = path.read_text(encoding="utf-8")
    marked = {i for i, line in enumerate(text.splitlines(), start=1) if "not task words" in line}
    tree = ast.parse(text)
    for node in ast.walk(tree):
        operands: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            operands += [e for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set)) for e in c.elts]
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            operands = [node.value]  # task.status = "..."
        for op in operands:
            if isinstance(op, ast.Constant) and op.value in WORDS and op.lineno not in marked:
                found.append(f"{path.relative_to(root)}:{op.lineno}: {op.value!r}")
    return found


def test_task_words_come_from_the_vocabulary() -> None:
    found = []
    for folder in ("core", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if str(path.relative_to(ROOT)) not in ALLOWED:
                found += literal_uses(path)
    assert not found, "use core.vocab instead of these literals:\n" + "\n".join(found)


def test_the_check_finds_a_bare_literal(tmp_path: Path) -> None:
    # In a temporary folder, not in core/: the test above may be reading core/ at the same time (pytest -n).
    sample = tmp_path / "core" / "_vocab_probe.py"
    sample.parent.mkdir()
    sample.write_text('def f(task):\n    if task.status == "completed":\n        task.status = "unsuccessful"\n')
    found = literal_uses(sample, root=tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == ["'completed'", "'unsuccessful'"]
    assert found[0].startswith("core/_vocab_probe.py:2: ")
