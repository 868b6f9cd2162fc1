"""The problem catalogue is complete: every slug the code can raise is in docs/problems.md, every
message has both languages, and every English text a raise site writes is recognised (so none
stays English for a Chinese reader)."""

from __future__ import annotations

import ast
import importlib
import re
import string
from pathlib import Path

import pytest

from services.common import errors as errors_module
from services.common.field_errors import _BY_TYPE
from services.common.message_catalog import MESSAGES, PROBLEMS, TITLES
from services.common.messages import CATALOG, negotiate, recognise, translate
from services.common.problem_docs import render

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.joinpath("services").rglob("*.py"), *ROOT.joinpath("gateway").rglob("*.py")])
ERRORS = {"DomainError", "Unauthorized", "Forbidden", "NotFound", "Conflict", "PreconditionFailed", "Unprocessable",
          "UpstreamUnavailable", "DatabaseUnavailable", "InvalidCursor"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


def _sample(node: ast.expr) -> str | None:
    """A literal as written; an f-string with each value replaced by a sample (X1, X2, …)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        names: dict[str, str] = {}  # the same expression twice is the same value twice
        return "".join(v.value if isinstance(v, ast.Constant) else names.setdefault(ast.unparse(v), f"X{len(names)}")
                       for v in node.values)
    return None


def raise_sites() -> list[tuple[str, str | None, str]]:
    """(where, slug, English text) of every error and constraint message in services and gateway."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                name = _name(node)
                kwargs = {k.arg: k.value for k in node.keywords}
                slug = kwargs.get("slug")
                slug_text = slug.value if isinstance(slug, ast.Constant) else None
                if name in ERRORS and node.args:
                    found.append((where, slug_text, _sample(node.args[0])))
                elif name == "register_constraint":
                    found.append((where, node.args[2].value, _sample(node.args[3])))
                elif name == "OAuthError":
                    found.append((where, "oauth-" + node.args[0].value.replace("_", "-"), _sample(node.args[1])))
                elif name == "problem_response" and slug_text is not None:
                    found.append((where, slug_text, _sample(kwargs["detail"]) if "detail" in kwargs else None))
                elif name == "_unavailable" and node.args:  # an upstream's reason, inside a message
                    found.append((where, None, _sample(node.args[0])))
            elif path.name == "middleware.py" and isinstance(node, ast.Tuple) and len(node.elts) == 3 and all(
                    isinstance(e, ast.Constant | ast.JoinedStr) for e in node.elts) and isinstance(
                    node.elts[0], ast.Constant) and isinstance(node.elts[0].value, int):
                found.append((where, node.elts[1].value, _sample(node.elts[2])))  # middleware refusals
    return found


def code_slugs() -> set[str]:
    """Every slug the code can answer: raise sites, class defaults, registered constraints, and the
    `urn:spp:problem:` literals of the middlewares that answer before any handler."""
    slugs = {slug for _, slug, _ in raise_sites() if slug}
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        slugs |= set(re.findall(r"urn:spp:problem:([a-z][a-z-]+)", text))
        slugs |= set(re.findall(r"^\s+status, slug, title = \d+, \"([a-z-]+)\"", text, re.M))
        slugs |= set(re.findall(r"^\s+slug = \"([a-z-]+)\"", text, re.M))
        slugs |= set(re.findall(r"slug=\{?\d+: \"([a-z-]+)\"", text))
    for service in ("partnership", "rotation", "training"):
        importlib.import_module(f"services.{service}.app")
    slugs |= {slug for _, slug, _ in errors_module._CONSTRAINTS.values()}
    slugs |= {slug for _, slug, _, _ in MESSAGES if slug}
    # Rules of approval failures become the slug of the 409 (services/rotation/service/rotations.py).
    slugs |= set(re.findall(r'fail\("([a-z-]+)"', ROOT.joinpath("services/rotation/service/rotations.py").read_text()))
    return slugs


def test_every_slug_the_code_raises_is_catalogued_in_docs_problems_md():
    documented = ROOT.joinpath("docs/problems.md").read_text(encoding="utf-8")
    slugs = code_slugs()
    assert len(slugs) > 80
    assert sorted(slugs - set(PROBLEMS)) == []
    assert sorted(s for s in slugs if f"`urn:spp:problem:{s}`" not in documented) == []
    assert sorted(set(PROBLEMS) - slugs) == []  # nothing documented that cannot happen


def test_docs_problems_md_is_the_generated_page():
    assert ROOT.joinpath("docs/problems.md").read_text(encoding="utf-8") == render()


def test_every_message_has_both_languages_with_the_same_parameters():
    keys = [key for key, _, _, _ in MESSAGES]
    assert len(keys) == len(set(keys))
    for key, _, en, zh in MESSAGES:
        en_fields = {f for _, f, _, _ in string.Formatter().parse(en) if f}
        zh_fields = {f for _, f, _, _ in string.Formatter().parse(zh) if f}
        assert en.strip() and zh.strip(), key
        assert en_fields == zh_fields, key
        assert CJK.search(zh) or zh in ("{reason}", "{field}：{reason}"), key
    assert all(CJK.search(zh) for zh in TITLES.values())
    assert all(key in CATALOG for key in _BY_TYPE.values())
    for status, todo_en, todo_zh in PROBLEMS.values():
        assert 400 <= status < 600 and todo_en and CJK.search(todo_zh)


def test_every_text_a_raise_site_writes_is_recognised():
    unrecognised = [(where, text) for where, _, text in raise_sites()
                    if text is not None and recognise(text) is None]
    assert unrecognised == []
    assert len(raise_sites()) > 150


def test_texts_built_in_sql_for_import_rows_are_recognised():
    """checks_sql/scope_sql build row messages in SQL: `'unknown school ' || code AS message`."""
    texts = []
    for path in ROOT.joinpath("services").glob("*/imports.py"):
        for sql in re.findall(r"SELECT (?:s\.|b\.)?row_no,\s*(.+?)\s+AS message", path.read_text(), re.S):
            texts.append("".join(_sql_sample(sql)))
    assert len(texts) >= 9
    assert [t for t in texts if recognise(t) is None] == []


def _sql_sample(expression: str) -> list[str]:
    """`'unknown school ' || quote_literal(code)` -> ["unknown school ", "X"]: literals kept, every
    other operand of a top-level `||` a sample value."""
    parts, depth, current, quoted, skip = [], 0, "", False, False
    for i, char in enumerate(expression):
        if skip:
            skip = False
            continue
        quoted ^= char == "'"
        if not quoted:
            depth += 1 if char in "([" else -1 if char in ")]" else 0
        if not quoted and depth == 0 and expression.startswith("||", i):
            parts.append(current)
            current, skip = "", True
        else:
            current += char
    parts.append(current)
    return [p.strip()[1:-1] if re.fullmatch(r"'[^']*'", p.strip()) else "X" for p in parts]


@pytest.mark.parametrize(("header", "language"), [
    (None, "zh"), ("", "zh"), ("en", "en"), ("en-US", "en"), ("zh-CN", "zh"), ("zh-Hant-TW", "zh"),
    ("fr", "zh"), ("*", "zh"), ("fr-FR, en;q=0.5", "en"), ("en;q=0.4, zh-CN;q=0.8", "zh"),
    ("zh;q=0.2, en", "en"), ("en;q=0, zh", "zh"), ("EN", "en"), ("de, *;q=0.5, en;q=0.1", "zh"),
])
def test_accept_language_is_negotiated_with_q_values(header, language):
    assert negotiate(header) == language


def test_a_text_outside_the_catalogue_is_shown_as_written():
    assert translate("something nobody wrote a template for", "zh") == "something nobody wrote a template for"
    assert translate("school 11010501 does not exist", "zh") == "学校 11010501 不存在"
    assert translate("cannot approve a rotation that is active", "zh") == "不能对状态为「进行中」的交流轮岗执行「批准」"
