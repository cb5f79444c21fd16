"""Playbook templates in shell commands: ``{{ name }}`` values travel as environment variables.

:func:`render_shell` replaces each ``{{ name }}`` in a step's command with ``"${ITOPS_VAR_name}"`` and
puts the value in the step's environment, so a value never becomes shell syntax whatever it holds.
A template the author wrote inside shell quotes (or a here-document body) would change meaning, so
:func:`_template_contexts`, a small sh lexer, finds those and the loader refuses them with file:line.
:func:`render` (plain text, for names and messages) and :func:`show_command` (for display) are here too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")


def _lookup(context: Mapping[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    if isinstance(value, Mapping | list):
        raise KeyError(dotted)
    return value


def render(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with every ``{{ name }}`` replaced by its value as is; KeyError if unknown."""
    return _TEMPLATE.sub(lambda m: str(_lookup(context, m.group(1))), text)


class TemplateQuoted(ValueError):
    """A ``{{ name }}`` sits inside shell quotes in a command."""


_ENV_PREFIX = "ITOPS_VAR_"
_ENV_REF = re.compile(r'"\$\{(' + _ENV_PREFIX + r'[A-Za-z0-9_]+)\}"')


def render_shell(text: str, context: Mapping[str, Any], env: dict[str, str]) -> str:
    """A shell command with each ``{{ name }}`` turned into ``"${ITOPS_VAR_name}"``; values go into ``env``.

    The value never enters the command text, so no value can become shell syntax whatever it
    holds. KeyError for an unknown name; :class:`TemplateQuoted` for a template inside quotes.
    """
    contexts = _template_contexts(text)

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        value = str(_lookup(context, name))
        where = contexts.get(m.start(), "bare")
        if where != "bare":
            raise TemplateQuoted(name, where)
        if "\0" in value:
            raise TemplateQuoted(name, "")  # no environment variable or shell word can hold a NUL byte
        var = _env_name(name, value, env)
        return f'"${{{var}}}"'

    return _TEMPLATE.sub(sub, text)


def _env_name(name: str, value: str, env: dict[str, str]) -> str:
    base = _ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", name)
    var, n = base, 1
    while var in env and env[var] != value:  # two names that sanitise alike (a-b, a_b)
        n += 1
        var = f"{base}_{n}"
    env[var] = value
    return var


def show_command(command: str, env: Mapping[str, str]) -> str:
    """``command`` with ``"${ITOPS_VAR_x}"`` replaced by the shell-quoted value: for display only."""
    return _ENV_REF.sub(lambda m: shlex.quote(env[m.group(1)]) if m.group(1) in env else m.group(0), command)


_HEREDOC = re.compile(r"""<<(-?)[ \t]*(?:'([^'\n]*)'|"([^"\n]*)"|\\?([^\s;&|<>()'"`]+))""")


def _template_contexts(text: str) -> dict[int, str]:
    """Where each ``{{ }}`` of the sh command ``text`` sits (by start offset).

    ``bare``, or for a template the shell would not expand as one plain word: ``single quotes``,
    ``double quotes``, ``a here-document``. A small POSIX sh lexer: quotes, backslashes,
    ``$( )`` and backticks (a fresh, unquoted context even inside double quotes), ``$'...'``,
    comments, here-documents. Templates are opaque words. It decides only what the author
    meant; safety does not depend on it, because values never enter the command text.
    """
    starts = {m.start(): m.end() for m in _TEMPLATE.finditer(text)}
    stack = ["bare"]  # bare | single | double | cmd ($( )) | paren (( ) inside $( )) | bq (backticks)
    out: dict[int, str] = {}
    heredocs: list[tuple[str, bool]] = []  # (delimiter, strip leading tabs) waiting for the next line
    i, n = 0, len(text)
    while i < n:
        top = stack[-1]
        if i in starts:
            out[i] = {"single": "single quotes", "double": "double quotes"}.get(top, "bare")
            i = starts[i]
            continue
        c = text[i]
        if top == "single":
            if c == "'":
                stack.pop()
            i += 1
            continue
        if c == "\\":
            i += 2
            continue
        if text.startswith("$(", i):
            stack.append("cmd")
            i += 2
            continue
        if c == "`":
            if top == "bq":
                stack.pop()
            else:
                stack.append("bq")
            i += 1
            continue
        if top == "double":
            if c == '"':
                stack.pop()
            i += 1
            continue
        if c == "\n" and heredocs:
            i = _skip_heredocs(text, i + 1, heredocs, starts, out)
            heredocs.clear()
            continue
        if text.startswith("<<<", i):  # a here-string: an ordinary word follows
            i += 3
            continue
        heredoc = _HEREDOC.match(text, i) if text.startswith("<<", i) else None
        if heredoc is not None:
            delimiter = next(g for g in heredoc.groups()[1:] if g is not None)
            heredocs.append((delimiter, heredoc.group(1) == "-"))
            i = heredoc.end()
            continue
        if text.startswith("$'", i):
            stack.append("single")
            i += 2
            continue
        if c == "'":
            stack.append("single")
        elif c == '"':
            stack.append("double")
        elif c == "(" and top in ("cmd", "paren"):
            stack.append("paren")
        elif c == ")" and top in ("cmd", "paren"):
            stack.pop()
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n;&|()"):
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        i += 1
    return out


def _skip_heredocs(
    text: str, i: int, heredocs: list[tuple[str, bool]], starts: Mapping[int, int], out: dict[int, str]
) -> int:
    """Skip the bodies of the pending here-documents from offset ``i``; templates in them are marked."""
    for delimiter, strip_tabs in heredocs:
        while i < len(text):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            line = text[i:end]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                i = end + 1
                break
            for start in starts:
                if i <= start < end:
                    out[start] = "a here-document"
            i = end + 1
    return i
