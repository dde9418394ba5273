"""Write the generated tables of docs/import.md from the code and the installed plugins.

    .venv/bin/python scripts/import_doc.py

Rewrites what lies between the ``<!-- generated: ... -->`` markers: the columns with
their header aliases, the specialties' own columns, and every procedure with its
aliases. tests/test_import_words.py checks that the page lists them all.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.importing import (
    ALIASES,
    EPISODE_COLUMNS,
    EPISODE_REQUIRED,
    PATIENT_COLUMNS,
    PATIENT_REQUIRED,
    TEMPLATE_NAMES,
    Columns,
)
from core.plugins import get_plugins

DOC = Path(__file__).resolve().parents[1] / "docs" / "import.md"
VALUES = {
    "patient_id": "the HIS's patient number (kept as given; the key of an update)",
    "name": "full name",
    "gender": "F/M, female/male, 女/男",
    "birth_date": "YYYY-MM-DD (also 2026/3/1, 2026年3月1日)",
    "phone": "a mainland mobile (11 digits, 1…), a landline with its area code (010-12345678) or a +country "
             "number; spaces, dashes and brackets are dropped",
    "site": "site code or name",
    "locale": "zh_CN or en (中文/英文): the language of the patient's script",
    "do_not_contact": "yes/no, 是/否, 1/0: sets do-not-contact (an import never lifts it)",
    "email": "for the e-mail channel",
    "preferred_call_time": "`18:00-20:00` (08:00–21:00), or 上午/下午/傍晚/晚上, morning/afternoon/after work/evening: "
                           "routine calls go then when their window allows",
    "birthday": "YYYY-MM-DD: for greetings", "anniversary": "YYYY-MM-DD: for greetings",
    "value_tier": "the clinic's customer tier (shown on the call card)",
    "referred_by": "the patient id of whoever referred this patient",
    "wechat_openid": "the patient's WeChat openid, for the WeChat channel",
    "episode_id": "the HIS's visit / encounter number (the key of an update)",
    "specialty": "specialty key or name (dental, 口腔科…)",
    "procedure": "procedure code, name or alias (see below)",
    "occurred_at": "when it happened, the site's local time: 2026-03-01 09:00 (or ISO 8601 with an offset)",
    "doctor": "attending doctor", "department": "department", "diagnosis": "diagnosis", "notes": "free text",
}


def _columns(columns: tuple[str, ...], required: tuple[str, ...]) -> list[str]:
    rows = ["| column | required | template header | aliases | value |", "|---|---|---|---|---|"]
    for c in columns:
        aliases = ", ".join(f"`{a}`" for a in ALIASES.get(c, ()))
        header = f"{TEMPLATE_NAMES[c]} ({c})" if c in TEMPLATE_NAMES else c
        rows.append(f"| `{c}` | {'yes' if c in required else ''} | {header} | {aliases} | {VALUES.get(c, '')} |")
    return rows


def generated() -> dict[str, list[str]]:
    plugins = get_plugins()
    attributes = ["| column | specialty | template header | aliases | value |", "|---|---|---|---|---|"]
    procedures = ["| specialty | code | name | aliases |", "|---|---|---|---|"]
    for key, (_, spec) in plugins.specialties().items():
        for a in spec.attributes:
            kind = "yes/no, 是/否" if a.type == "yes_no" else "text"
            attributes.append(f"| `{a.key}` | {key} | {a.names.zh_CN} ({a.key}) | "
                              f"{', '.join(f'`{h}`' for h in a.headers)} | {kind} |")
        for proc in spec.procedures:
            procedures.append(f"| {key} | `{proc.code}` | {proc.names.zh_CN} / {proc.names.en} | "
                              f"{'、'.join(proc.aliases) or '—'} |")
    assert Columns.of_plugins(plugins)  # the plugins' columns agree with each other
    return {"patients": _columns(PATIENT_COLUMNS, PATIENT_REQUIRED),
            "episodes": _columns(EPISODE_COLUMNS, EPISODE_REQUIRED),
            "attributes": attributes, "procedures": procedures}


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, rows in generated().items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(\n<!-- end -->)", re.S)
        text, n = pattern.subn(lambda m, rows=rows: m.group(1) + "\n".join(rows) + m.group(2), text)
        assert n == 1, name
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
