"""Chinese and English texts for problems and import reports (catalogue: message_catalog.py).

Why this shape: the code raises errors with English texts (`NotFound(f"school {code} does not
exist")`) at about a hundred and twenty places, and import checks build theirs in SQL. Rather than
thread a language through all of them, a text is recognised when it is *rendered*: each English
template of the catalogue is also a pattern (`school {code} does not exist` matches
`school 11010501 does not exist` with code=11010501), and the text is rewritten in the language of
the request (`language_var`, set per request from `Accept-Language` by the request middleware).
A text no template matches is shown as written. tests/common/test_problem_catalogue.py checks that
every text a raise site can produce is matched, so a new message cannot silently stay English.

Import reports are stored in English (the `en` rendering) and translated when read, so a report a
job wrote hours ago comes back in the language of whoever reads it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from services.common.message_catalog import MESSAGES, TITLES, VALUE_LABELS

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"  # no Accept-Language, `*`, or only languages we do not have
language_var: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)
# Parameters whose value is itself a message (a reason, a rule's text): translated in turn.
NESTED = frozenset({"reason"})
# Parameters whose value is a status or an action code: shown with its Chinese label in Chinese.
LABELLED = frozenset({"status", "action"})


@dataclass(frozen=True)
class Message:
    key: str
    slug: str | None
    en: str
    zh: str

    def text(self, language: str) -> str:
        return self.zh if language == "zh" else self.en

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.en) if name)


CATALOG: dict[str, Message] = {key: Message(key, slug, en, zh) for key, slug, en, zh in MESSAGES}


def negotiate(header: str | None) -> str:
    """The language to answer in, from an Accept-Language value (RFC 9110 §12.5.4): the acceptable
    tag with the highest q-value (first listed on a tie) whose primary subtag we speak; `zh-CN`,
    `zh-Hans-CN` and `zh` are Chinese, `en-US` English. `*`, nothing acceptable, or no header: Chinese."""
    if not header:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-", 1)[0]
        if quality > 0 and primary:
            ranked.append((-quality, position, primary))
    for _, _, primary in sorted(ranked):
        if primary in LANGUAGES:
            return primary
        if primary == "*":
            return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def language_of_scope(scope: dict[str, Any]) -> str:
    """The negotiated language of an ASGI request (for middleware that answers before routing)."""
    for name, value in scope.get("headers") or []:
        if name == b"accept-language":
            return negotiate(value.decode("latin-1"))
    return DEFAULT_LANGUAGE


def current_language() -> str:
    return language_var.get()


@contextmanager
def use_language(language: str) -> Iterator[None]:
    token = language_var.set(language)
    try:
        yield
    finally:
        language_var.reset(token)


def _value(name: str, value: Any, language: str) -> str:
    text = str(value)
    if name in NESTED:
        return translate(text, language) or ""
    if name == "expected" and language == "zh":  # pydantic's "'a', 'b' or 'c'"
        return text.replace("', '", "'、'").replace("' or '", "'、'")
    return VALUE_LABELS.get(text, text) if language == "zh" and name in LABELLED else text


def render(key: str, language: str | None = None, /, **params: Any) -> str:
    """The message `key` in `language` (default: the request's), parameters filled in."""
    language = language or current_language()
    message = CATALOG[key]
    values = {name: _value(name, value, language) for name, value in params.items()}
    return message.text(language).format(**values)


def _pattern(template: str) -> re.Pattern[str] | None:
    """`school {code} does not exist` -> ^school (?P<code>.+?) does not exist$ (None when the
    template is nothing but a parameter: it would match every text)."""
    parts: list[str] = []
    seen: set[str] = set()
    literal_chars = 0
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        literal_chars += len(literal.strip())
        if name:
            # A value never spans "; ": that joins several messages (see `translate`).
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>(?:(?!; ).)+?)")
            seen.add(name)
    return re.compile("".join(parts), re.DOTALL) if literal_chars else None


# Most literal text first: `the rotation service is unavailable` must win over
# `the {service} service is unavailable`.
def _literal_length(template: str) -> int:
    return sum(len(literal) for literal, _, _, _ in string.Formatter().parse(template))


_PATTERNS: list[tuple[re.Pattern[str], Message]] = sorted(
    ((pattern, message) for message in CATALOG.values() if (pattern := _pattern(message.en)) is not None),
    key=lambda item: -_literal_length(item[1].en),
)


@lru_cache(maxsize=4096)
def recognise(text: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """The catalogue key and parameters of an English text, or None."""
    for pattern, message in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is not None:
            return message.key, tuple(match.groupdict().items())
    return None


def translate(text: str | None, language: str | None = None) -> str | None:
    """An English text of the catalogue in `language` (default: the request's); others unchanged."""
    language = language or current_language()
    if not text or language == "en":
        return text
    found = recognise(text)
    if found is None:
        if "; " in text:  # several messages joined (field errors in a detail): each on its own
            return "；".join(translate(part, language) or part for part in text.split("; "))
        return text
    key, params = found
    return render(key, language, **dict(params))


def translate_title(title: str, language: str | None = None) -> str:
    language = language or current_language()
    return TITLES.get(title, title) if language == "zh" else title


def translate_extra(extra: dict[str, Any], language: str | None = None) -> dict[str, Any]:
    """Texts inside a problem: `errors[].message` and `failures[].detail`. Everything else (the
    OAuth `error_description`, which RFC 6749 §5.2 keeps ASCII, ids, codes) stays as it is."""
    language = language or current_language()
    if language == "en" or not extra:
        return extra
    out = dict(extra)
    for name, text_key in (("errors", "message"), ("failures", "detail")):
        items = out.get(name)
        if isinstance(items, list):
            out[name] = [{**item, text_key: translate(item.get(text_key), language)}
                         if isinstance(item, dict) and isinstance(item.get(text_key), str) else item
                         for item in items]
    return out
