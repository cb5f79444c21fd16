"""The jinja2 environment of the human reports (HTML, Markdown): autoescape always on.

Templates come from ``templates/`` shipped with itops; ``--templates DIR`` puts a user's
folder in front, so a user may override one template (say ``report.html.j2``) and keep
the others. Every printed value goes through :func:`printable` (control characters
become visible ``\\xNN``) and then HTML escaping; the Markdown filters escape Markdown too.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from itops.errors import UsageError
from itops.frameworks import label as framework_label
from itops.report.data import CONTROL_CHARS, printable
from itops.resources import bundled_dir


def _finalize(value: Any) -> Any:
    # Called for every printed value: the common case (plain text, nothing to replace) stays cheap.
    if value.__class__ is str or (isinstance(value, str) and not isinstance(value, Markup)):
        return printable(value) if CONTROL_CHARS.search(value) else value
    return "" if value is None else value


def fmt_time(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts else "-"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def md_inline(text: object) -> Markup:
    """Text safe in a Markdown paragraph or table cell: HTML and Markdown syntax escaped, one line."""
    raw = printable(str(text or ""))
    one_line = " ".join(raw.split())
    # HTML-escape first (so no tag or entity survives), then backslash-escape Markdown
    # punctuation. Quotes stay: Markdown text is never inside an attribute.
    escaped = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Markup(re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", escaped))  # noqa: S704 (escaped above)


def md_code(text: object) -> Markup:
    """A fenced code block holding ``text`` verbatim: the fence is longer than any backtick run inside."""
    raw = printable(str(text or "")).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", raw)), default=0)
    fence = "`" * max(3, longest + 1)
    # Verbatim on purpose: a fenced block is never parsed as HTML, and the fence cannot be closed early.
    return Markup(f"{fence}text\n{raw}\n{fence}")  # noqa: S704


@lru_cache(maxsize=8)
def environment(templates: Path | None = None) -> jinja2.Environment:
    """The report environment; ``templates`` (a user's folder) is searched before the bundled one."""
    folders = [str(bundled_dir("templates"))]
    if templates is not None:
        if not templates.is_dir():
            raise UsageError(f"templates folder not found: {templates}")
        folders.insert(0, str(templates))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        fmt_time=fmt_time,
        fmt_duration=fmt_duration,
        pct=pct,
        first_line=first_line,
        md=md_inline,
        md_code=md_code,
        framework_label=framework_label,
    )
    return env


def render_template(name: str, templates: Path | None, **context: Any) -> str:
    """Render template ``name``; a missing or broken template is a usage error naming the file."""
    env = environment(templates.resolve() if templates else None)
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise UsageError(f"report template not found: {exc.name}", hint="see templates/ shipped with itops") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"report template {exc.filename}:{exc.lineno}: {exc.message}") from exc
