"""Every message id used by the workbench has a Simplified Chinese text (the default locale)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from web.auth import ROLE_LABELS
from web.errors import TITLES
from web.i18n import catalog

WEB = Path(__file__).resolve().parents[2] / "web"
CALL = re.compile(r"""(?<![A-Za-z0-9_])_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*[,)]""")


def message_ids() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in list(WEB.rglob("*.html")) + [p for p in WEB.rglob("*.py") if p.name != "i18n.py"]:
        text = path.read_text(encoding="utf-8")
        for m in CALL.finditer(text):
            msg = m.group(1) if m.group(1) is not None else m.group(2)
            msg = msg.encode().decode("unicode_escape") if "\\" in msg else msg
            line = text.count("\n", 0, m.start()) + 1
            found.setdefault(msg, f"{path.relative_to(WEB.parent)}:{line}")
    for msg in list(TITLES.values()) + list(ROLE_LABELS.values()):
        found.setdefault(msg, "web/errors.py or web/auth")
    return found


def test_message_ids_are_found():
    ids = message_ids()
    assert "Sign in" in ids and len(ids) > 20


def test_every_message_has_a_chinese_text():
    zh = catalog("zh")
    missing = [f"{where}: {msg!r}" for msg, where in sorted(message_ids().items(), key=lambda kv: kv[1])
               if msg not in zh]
    assert not missing, "no Chinese text (add to web/translations/zh/<area>.yaml):\n" + "\n".join(missing)


def test_catalog_files_are_flat_string_maps():
    for path in (WEB / "translations" / "zh").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        assert isinstance(data, dict), path
        bad = [k for k, v in data.items() if not isinstance(v, str) or not v.strip()]
        assert not bad, f"{path.name}: entries without a text: {bad}"


def engine_templates() -> dict[str, str]:
    """The English templates of translatable engine errors (``SomeError.fmt("…", …)``) in the engine."""
    found: dict[str, str] = {}
    root = WEB.parent
    for path in sorted((root / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fmt"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_every_engine_error_template_has_a_chinese_text():
    templates = engine_templates()
    assert "Task {id} does not exist." in templates and len(templates) > 15
    zh = catalog("zh")
    missing = [f"{where}: {msg!r}" for msg, where in sorted(templates.items(), key=lambda kv: kv[1]) if msg not in zh]
    assert not missing, "no Chinese text (add to web/translations/zh/policy.yaml):\n" + "\n".join(missing)
