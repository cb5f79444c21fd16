"""What a check declares as its machine-applicable fix (``fix=`` on a check, ``fix:`` in YAML).

A fix is data, not shell: a list of actions of a few kinds, each rendered by
:mod:`itops.remediate.render` into idempotent POSIX sh (functions of
:mod:`itops.remediate.shlib`) or into Ansible tasks using builtin modules only.

Values may name the check's parameters as ``{param}`` and the failing result's resource as
``{resource}``; they are filled in when a remediation is written and every filled value is
then quoted (``shlex.quote`` for sh, ``!unsafe`` strings for Ansible), so nothing a host
reported ever becomes code. Kinds:

- ``sshd: {Keyword: value}``: the keyword set once at the top of /etc/ssh/sshd_config, every
  other setting of it (drop-ins and ``Match`` blocks included) commented out; ``sshd -t``
  decides, and the previous files come back when it fails.
- ``files: [{path, mode, owner, group}]``: ``mode`` is the most a file may allow (bits beyond it
  are removed, none added; a ``{param}`` is allowed); one file each, never recursive.
- ``lines: [{path, key, value, sep}]``: ``key<sep>value`` set in a ``key value`` file
  (login.defs, journald.conf ...), other settings of the key commented out.
- ``sysctl: {name: value}``: persistent in /etc/sysctl.d/60-itops.conf (other settings of the
  name commented out) and at runtime with ``sysctl -w``.
- ``modules: [name]``: ``install NAME /bin/false`` + ``blacklist NAME`` in /etc/modprobe.d,
  unloaded when loaded.
- ``packages_absent: [name]``: removed with the host's package manager (always ``risk: high``).
- ``sh``: the check author's own POSIX sh (placeholders quoted), for what the kinds cannot say;
  ``ansible``: the same as a list of Ansible tasks, which read the parameters and ``resource`` as
  Ansible variables (``{{ resource }}``), passed to each task as ``!unsafe`` values.

``risk: high`` fixes (locking accounts, removing packages, anything that can lock out SSH)
are only written with ``--include-risky``. ``manual: WHY`` says there is no automatic fix.
``resources: REGEX`` limits the fix to the FAILs whose resource matches (a login.defs fix does not
fix one account's stored hash); the others are listed as left out.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["PLACEHOLDER_RE", "FileFix", "Fix", "LineFix"]

#: ``{name}`` in a fix value: a parameter of the check, or ``resource``
PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_KEYWORD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_MODULE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._@-]*$")
_ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_.-]*\$?$|^[0-9]+$")


def _one_line(v: str) -> str:
    if "\n" in v or "\0" in v or "\r" in v:
        raise ValueError(f"must be one line, got {v!r}")
    return v


class FileFix(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    mode: str | None = None  # the most the file may allow, octal ("0640")
    owner: str | None = None
    group: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not (v.startswith("/") or v.startswith("{")):
            raise ValueError(f"must be an absolute path or {{resource}}, got {v!r}")
        return _one_line(v)

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"0?[0-7]{3,4}|\{[a-z_][a-z0-9_]*\}", v):
            raise ValueError(f"mode must be octal like '0640' or a {{param}}, got {v!r}")
        return v

    @field_validator("owner", "group")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is not None and not _ACCOUNT_RE.match(v):
            raise ValueError(f"not an account or group name: {v!r}")
        return v


class LineFix(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    key: str
    value: str
    sep: Literal[" ", "=", " = ", "\t"] = " "

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must be an absolute path, got {v!r}")
        return _one_line(v)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _KEYWORD_RE.match(v):
            raise ValueError(f"key must be one word, got {v!r}")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        return _one_line(v)


class Fix(BaseModel):
    """A check's automatic fix (or why there is none: ``manual``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk: Literal["low", "high"] = "low"
    manual: str = ""
    note: str = ""  # one line for the reviewer (what else the fix implies)
    #: a regular expression a FAIL's resource must match for this fix to cover it (empty: every FAIL);
    #: e.g. a login.defs fix does not fix one account's stored hash
    resources: str = ""
    sshd: dict[str, str] = Field(default_factory=dict)
    files: tuple[FileFix, ...] = ()
    lines: tuple[LineFix, ...] = ()
    sysctl: dict[str, str] = Field(default_factory=dict)
    modules: tuple[str, ...] = ()
    packages_absent: tuple[str, ...] = ()
    sh: str = ""
    ansible: tuple[dict[str, Any], ...] = ()

    @field_validator("sshd")
    @classmethod
    def _sshd(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _KEYWORD_RE.match(key):
                raise ValueError(f"not an sshd keyword: {key!r}")
            _one_line(value)
        return v

    @field_validator("sysctl")
    @classmethod
    def _sysctl(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_*-]+)+", key):
                raise ValueError(f"not a sysctl name: {key!r}")
            _one_line(value)
        return v

    @field_validator("resources")
    @classmethod
    def _resources(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"bad regular expression {v!r}: {exc}") from None
        return v

    @field_validator("modules")
    @classmethod
    def _modules(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [m for m in v if not _MODULE_RE.match(m)]
        if bad:
            raise ValueError(f"not kernel module names: {bad}")
        return v

    @field_validator("packages_absent")
    @classmethod
    def _packages(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in v if not _PACKAGE_RE.match(p)]
        if bad:
            raise ValueError(f"not package names: {bad}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Fix:
        actions = self.has_actions
        if self.manual and actions:
            raise ValueError("a fix is either manual: WHY or actions, not both")
        if not self.manual and not actions:
            raise ValueError(
                "a fix needs at least one action (sshd, files, lines, sysctl, modules, "
                "packages_absent, sh) or manual: WHY"
            )
        if self.packages_absent and self.risk != "high":
            raise ValueError("removing packages is risk: high")
        if self.ansible and not self.sh:
            raise ValueError("ansible: tasks come with the same fix as sh: (the sh script is the reference)")
        return self

    @property
    def has_actions(self) -> bool:
        return bool(
            self.sshd or self.files or self.lines or self.sysctl or self.modules or self.packages_absent or self.sh
        )

    @property
    def automatic(self) -> bool:
        return not self.manual

    def placeholders(self) -> set[str]:
        """Every ``{name}`` the fix's values use."""
        texts: list[str] = [*self.sshd.values(), *self.sysctl.values(), self.sh]
        texts += [f.path for f in self.files] + [f.mode or "" for f in self.files] + [ln.value for ln in self.lines]
        return {n for t in texts for n in PLACEHOLDER_RE.findall(t)}

    def summary(self) -> str:
        """One line for `itops checks list`: auto, auto (risky) or manual."""
        if self.manual:
            return "manual"
        return "auto (risky)" if self.risk == "high" else "auto"
