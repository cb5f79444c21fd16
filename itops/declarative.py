"""Declarative checks: simple host checks written in YAML instead of Python.

The built-in ``checks`` plugin (:mod:`itops.default_plugins.checks`) registers
:func:`load_declarative_file` for ``.yaml`` and ``.yml``, so YAML files in any checks folder
become checks next to the Python ones. A file holds one check (a mapping) or several under ``checks:``::

    checks:
      - id: files.issue_net_permissions_restricted
        title: /etc/issue.net is not writable by group or others
        severity: low
        rationale: ...
        remediation: chmod 0644 /etc/issue.net && chown root:root /etc/issue.net
        frameworks: {cis-debian-12: ["1.6.6"], nist-800-53: [CM-6], iso-27001: [A.8.9]}
        type: file
        path: /etc/issue.net
        mode: "0644"        # the most it may allow: no bit beyond rw-r--r--
        owner: root
        group: root

A check may carry ``fix:`` (see :mod:`itops.remediate.spec`), e.g.
``fix: {files: [{path: /etc/issue.net, mode: "0644", owner: root, group: root}]}``, which
``itops remediate`` turns into a script or playbook.

Types: ``file`` (exists / mode / owner / group), ``config`` (a key's value in a
``key value``, ``key=value`` or ini file), ``command`` (stdout regex and exit status),
``package`` (installed / absent) and ``service`` (active / inactive / enabled /
disabled). The metadata keys are those of every check (:class:`itops.checkapi.CheckMeta`)
and are validated the same way. Every path and name reaches the shell through
:func:`itops.checkapi.quote`; the ``command`` type runs the check author's own
command as written (a check file is code the user chose to run, not inventory data).

A broken file raises :class:`itops.errors.ConfigError` listing every problem with
file and line; the registry reports it (a warning for user folders, an error for the
built-in ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator

from itops.checkapi import Check, CheckMeta, Facts, Finding, Params, Probe, quote
from itops.checklib import packages as pkglib
from itops.checklib import services as svclib
from itops.errors import ConfigError, ConfigProblem
from itops.redact import REDACTED, names_secret
from itops.yamlload import LineMap, StrictModel, format_path, read_yaml, suggest, validate_model

__all__ = ["SUFFIXES", "TYPES", "load_declarative_file", "parse_declarative_text"]

SUFFIXES = (".yaml", ".yml")
_META_KEYS = ("id", "title", "severity", "rationale", "remediation", "frameworks", "os_families", "tags", "fix")
_PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._@-]*$")
_UNIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@_.:\\-]*$")


def _error(problems: list[ConfigProblem]) -> ConfigError:
    return ConfigError(problems, what="declarative check file")


def _no_number(value: Any) -> Any:
    # YAML 1.1 reads 0644 as 420, 027 as 23 and yes as True: insist on quotes instead of guessing
    if isinstance(value, bool | int | float):
        raise ValueError(f'must be a quoted string (YAML read {value!r}); write it in quotes, e.g. "0644" or "yes"')
    return value


class _Spec(StrictModel):
    """Keys every declarative check may have; the metadata ones are validated by CheckMeta."""

    id: Any = None
    title: Any = None
    severity: Any = None
    rationale: Any = None
    remediation: Any = None
    frameworks: Any = None
    os_families: Any = None
    tags: Any = None
    fix: Any = None  # the automatic fix (itops.remediate.spec.Fix), validated with the metadata
    description: str = ""
    type: str


class FileSpec(_Spec):
    type: Literal["file"]
    path: str
    exists: bool = True
    mode: str | None = None
    owner: str | None = None
    group: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _abs_path(v)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        v = _no_number(v)
        if v is not None and not re.fullmatch(r"0?[0-7]{3,4}", str(v)):
            raise ValueError(f'mode must be octal permissions like "0644" or "0600", got {v!r}')
        return v

    @model_validator(mode="after")
    def _nothing_else_when_absent(self) -> FileSpec:
        if not self.exists and (self.mode or self.owner or self.group):
            raise ValueError("mode/owner/group make no sense with exists: false")
        return self


class ConfigSpec(_Spec):
    type: Literal["config"]
    path: str
    key: str
    expected: str | None = None
    one_of: list[str] | None = None
    syntax: Literal["space", "equals", "ini"] = "space"
    section: str | None = None
    absent_ok: bool = False
    key_case_insensitive: bool = False
    value_case_insensitive: bool = False
    occurrence: Literal["first", "last"] = "last"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _abs_path(v)

    @field_validator("expected", "one_of", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        for item in v if isinstance(v, list) else [v]:
            _no_number(item)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ConfigSpec:
        if (self.expected is None) == (self.one_of is None):
            raise ValueError("give exactly one of expected: VALUE or one_of: [VALUES]")
        if self.syntax == "ini" and not self.section:
            raise ValueError("syntax: ini needs section: NAME")
        if self.syntax != "ini" and self.section:
            raise ValueError("section: only applies to syntax: ini")
        if not self.key.strip() or any(c.isspace() for c in self.key):
            raise ValueError(f"key must be one word, got {self.key!r}")
        return self


class CommandSpec(_Spec):
    type: Literal["command"]
    command: str
    matches: str | None = None
    not_matches: str | None = None
    rc: int | list[int] = 0
    timeout: float | None = None

    @field_validator("matches", "not_matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"bad regular expression {v!r}: {exc}") from None
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class PackageSpec(_Spec):
    type: Literal["package"]
    # one name, or the names one thing goes by (Debian ships the ftp client as ftp, tnftp and
    # inetutils-ftp): absent means none of them, installed means at least one of them
    name: str | list[str]
    state: Literal["installed", "absent"] = "installed"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | list[str]) -> str | list[str]:
        names = [v] if isinstance(v, str) else v
        if not names:
            raise ValueError("must name at least one package")
        for n in names:
            if not _PACKAGE_RE.match(n):
                raise ValueError(f"not a package name: {n!r}")
        if len(set(names)) != len(names):
            raise ValueError("names a package twice")
        return v

    @property
    def names(self) -> list[str]:
        return [self.name] if isinstance(self.name, str) else list(self.name)


class ServiceSpec(_Spec):
    type: Literal["service"]
    name: str
    state: Literal["active", "inactive", "enabled", "disabled"]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _UNIT_RE.match(v):
            raise ValueError(f"not a systemd unit name: {v!r}")
        return v


TYPES: dict[str, type[_Spec]] = {
    "file": FileSpec,
    "config": ConfigSpec,
    "command": CommandSpec,
    "package": PackageSpec,
    "service": ServiceSpec,
}


def _abs_path(v: str) -> str:
    if not v.startswith("/") or "\n" in v or "\0" in v:
        raise ValueError(f"must be an absolute path on one line, got {v!r}")
    return v


# --- probes -------------------------------------------------------------------------------


def _probe_for(spec: _Spec, check_id: str) -> Probe:
    if isinstance(spec, FileSpec):
        return Probe(f"yaml_file:{check_id}", f"stat -L -c '%a %u %g %U %G %F' -- {quote(spec.path)}")
    if isinstance(spec, ConfigSpec):
        # plain `cat PATH` (paths are absolute) so a Python check reading the same file shares the probe
        return Probe(f"yaml_config:{check_id}", f"cat {quote(spec.path)}")
    if isinstance(spec, CommandSpec):
        return Probe(f"yaml_command:{check_id}", spec.command, timeout=spec.timeout)
    if isinstance(spec, PackageSpec):
        return pkglib.packages_probe()  # shared: one package listing per host for every package check
    if isinstance(spec, ServiceSpec):
        # a unit the built-in packs already ask about shares their one service probe per host
        if spec.name in svclib.SHARED_UNITS:
            return Probe(f"yaml_service:{check_id}", svclib.services_probe().render({}))
        return Probe(f"yaml_service:{check_id}", svclib.service_state_command([spec.name], processes=False))
    raise TypeError(f"no probe for {type(spec).__name__}")


def _not_run(facts: Facts, probe: Probe) -> Finding | None:
    """ERROR for a probe that did not run, timed out, or whose command is missing (rc 126/127)."""
    r = facts.get(probe.name)
    if r is None:
        return Finding.error(f"could not assess: probe {probe.name} did not run")
    if r.timed_out or r.rc is None or r.rc in (126, 127):
        return Finding.error(f"could not assess: {r.problem()}")
    return None


def _missing_file(stderr: str) -> bool:
    return "No such file or directory" in stderr


# --- evaluation ---------------------------------------------------------------------------


def _eval_file(spec: FileSpec, probe: Probe, facts: Facts, params: Params) -> Finding:
    if (err := _not_run(facts, probe)) is not None:
        return err
    r = facts[probe.name]
    if r.rc != 0:
        if not _missing_file(r.err_text):
            return Finding.error(f"could not assess: {r.problem()}")
        if spec.exists:
            return Finding.failed(f"{spec.path} does not exist", observed="missing", expected="exists")
        return Finding.passed(f"{spec.path} does not exist", observed="missing", expected="absent")
    parts = r.text.strip().split(" ", 5)
    if len(parts) != 6 or not re.fullmatch(r"[0-7]{1,4}", parts[0]):
        return Finding.error(f"could not assess: unexpected stat output {r.text.strip()[:120]!r}")
    mode, uid, gid, user, group, kind = int(parts[0], 8), parts[1], parts[2], parts[3], parts[4], parts[5]
    observed = f"{kind} {mode:04o} {user}:{group}"
    if not spec.exists:
        return Finding.failed(f"{spec.path} exists ({observed})", observed=observed, expected="absent")
    problems: list[str] = []
    expected: list[str] = []
    if spec.mode is not None:
        limit = int(spec.mode, 8)
        expected.append(f"mode at most {limit:04o}")
        extra = mode & ~limit & 0o7777
        if extra:
            problems.append(f"mode {mode:04o} allows {extra:04o} beyond {limit:04o}")
    if spec.owner is not None:
        expected.append(f"owner {spec.owner}")
        if spec.owner not in (user, uid):
            problems.append(f"owner {user} (expected {spec.owner})")
    if spec.group is not None:
        expected.append(f"group {spec.group}")
        if spec.group not in (group, gid):
            problems.append(f"group {group} (expected {spec.group})")
    want = ", ".join(expected) or "exists"
    if problems:
        return Finding.failed(f"{spec.path}: {'; '.join(problems)}", observed=observed, expected=want)
    return Finding.passed(f"{spec.path}: {observed}", observed=observed, expected=want)


def config_values(text: str, spec: ConfigSpec) -> list[str]:
    """Every value set for ``spec.key`` in ``text``, in file order, per the spec's syntax."""
    return [value for value, _ in config_settings(text, spec)]


def config_settings(text: str, spec: ConfigSpec) -> list[tuple[str, str]]:
    """(value, the line that set it) for every setting of ``spec.key`` in ``text``, in file order."""
    values: list[tuple[str, str]] = []
    section = ""
    want = spec.key.lower() if spec.key_case_insensitive else spec.key
    comments = "#;" if spec.syntax == "ini" else "#"
    # comments dropped in one pass (most of a stock configuration file), the settings read one by one
    for line in [s for s in map(str.strip, text.splitlines()) if s and s[0] not in comments]:
        if spec.syntax == "ini" and line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if spec.syntax == "space":
            key, _, value = line.partition(" ") if " " in line else line.partition("\t")
            if "\t" in key:
                key, _, rest = key.partition("\t")
                value = f"{rest} {value}"
        else:
            if "=" not in line:
                continue
            key, _, value = line.partition("=")
        key = key.strip()
        if spec.key_case_insensitive:
            key = key.lower()
        if key != want or (spec.syntax == "ini" and section != spec.section):
            continue
        value = " ".join(value.split())
        if spec.syntax == "equals" and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values.append((value, line))
    return values


def _eval_config(spec: ConfigSpec, probe: Probe, facts: Facts, params: Params) -> Finding:
    if (err := _not_run(facts, probe)) is not None:
        return err
    r = facts[probe.name]
    allowed = [spec.expected] if spec.expected is not None else list(spec.one_of or [])
    expected = f"{spec.key} {'|'.join(allowed)}"
    where = f"{spec.path}" + (f" [{spec.section}]" if spec.section else "")
    if r.rc != 0:
        if not _missing_file(r.err_text):
            return Finding.error(f"could not assess: {r.problem()}")
        if spec.absent_ok:
            return Finding.passed(f"{spec.path} does not exist (absent_ok: the default applies)", expected=expected)
        return Finding.failed(f"{spec.path} does not exist", observed="file missing", expected=expected)
    settings = config_settings(r.text, spec)
    if not settings:
        if spec.absent_ok:
            return Finding.passed(
                f"{spec.key} is not set in {where} (absent_ok: the default applies)",
                observed="not set",
                expected=expected,
            )
        return Finding.failed(f"{spec.key} is not set in {where}", observed="not set", expected=expected)
    value, line = settings[0] if spec.occurrence == "first" else settings[-1]
    fold = spec.value_case_insensitive
    # a key that holds a secret (DB_PASSWORD, requirepass): the verdict is stored, never the value
    secret = names_secret(spec.key)
    observed = f"{spec.key} {REDACTED if secret else value}"
    lines = (observed if secret else line,)
    if (value.lower() if fold else value) in {a.lower() if fold else a for a in allowed}:
        return Finding.passed(f"{where}: {observed}", observed=observed, expected=expected, lines=lines)
    return Finding.failed(
        f"{where}: {observed} (expected {' or '.join(allowed)})", observed=observed, expected=expected, lines=lines
    )


def _eval_command(spec: CommandSpec, probe: Probe, facts: Facts, params: Params) -> Finding:
    if (err := _not_run(facts, probe)) is not None:
        return err
    r = facts[probe.name]
    rcs = spec.rc if isinstance(spec.rc, list) else [spec.rc]
    out = r.text
    expected = "; ".join(
        x
        for x in (
            f"exit status {'/'.join(map(str, rcs))}",
            f"stdout matches {spec.matches!r}" if spec.matches is not None else "",
            f"stdout does not match {spec.not_matches!r}" if spec.not_matches is not None else "",
        )
        if x
    )
    problems: list[str] = []
    if r.rc not in rcs:
        first = (r.err_text.strip().splitlines() or [""])[0][:160]
        problems.append(f"exited {r.rc}" + (f" ({first})" if first else ""))
    if spec.matches is not None and not re.search(spec.matches, out, re.MULTILINE):
        problems.append(f"stdout does not match {spec.matches!r}")
    deciding: list[str] = []
    if spec.not_matches is not None and (m := re.search(spec.not_matches, out, re.MULTILINE)):
        problems.append(f"stdout matches {spec.not_matches!r}: {m.group(0)[:160]!r}")
        deciding.append(_line_of(out, m.start()))
    elif spec.matches is not None and (m := re.search(spec.matches, out, re.MULTILINE)):
        deciding.append(_line_of(out, m.start()))
    observed = f"exit {r.rc}; {len(out.splitlines())} line(s) of output"
    lines = tuple(deciding)
    if problems:
        return Finding.failed("; ".join(problems), observed=observed, expected=expected, lines=lines)
    return Finding.passed(f"command output as expected ({expected})", observed=observed, expected=expected, lines=lines)


def _line_of(text: str, pos: int) -> str:
    """The line of ``text`` holding position ``pos`` (the evidence of a pattern match)."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def _eval_package(spec: PackageSpec, probe: Probe, facts: Facts, params: Params) -> Finding:
    if (err := _not_run(facts, probe)) is not None:
        return err
    r = facts[probe.name]
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    try:
        inventory = facts.parsed(probe, pkglib.parse_package_inventory)  # once per host
    except ValueError as exc:
        return Finding.error(f"could not assess: {exc}")
    names = spec.names
    found = inventory.present(names)
    if len(names) == 1:
        observed = "installed" if found else "not installed"
        message = f"package {names[0]} is {observed} ({inventory.manager})"
    else:
        observed = "installed: " + ", ".join(found) if found else "not installed"
        message = (f"installed: {', '.join(found)}" if found else f"none of {', '.join(names)} is installed") + (
            f" ({inventory.manager})"
        )
    if bool(found) == (spec.state == "installed"):
        return Finding.passed(message, observed=observed, expected=spec.state)
    return Finding.failed(message, observed=observed, expected=spec.state)


def _eval_service(spec: ServiceSpec, probe: Probe, facts: Facts, params: Params) -> Finding:
    if (err := _not_run(facts, probe)) is not None:
        return err
    r = facts[probe.name]
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    try:
        snap = facts.parsed(probe, svclib.parse_service_snapshot)  # once per host
    except ValueError as exc:
        return Finding.error(f"could not assess: {exc}")
    if not snap.systemd:
        if snap.installed.get(spec.name) is False:
            # no unit file and no init script: certainly neither enabled nor active
            message = f"service {spec.name} is not installed (no unit file or init script)"
            if spec.state in ("disabled", "inactive"):
                return Finding.passed(message, observed="not installed", expected=spec.state)
            return Finding.failed(f"{message}, expected {spec.state}", observed="not installed", expected=spec.state)
        return Finding.error(f"could not assess: systemd is not running this host (PID 1 is {snap.pid1!r})")
    unit = snap.unit(spec.name)
    if unit is None or (not unit.active and not unit.enabled):
        return Finding.error(f"could not assess: systemctl reported no state for {spec.name}")
    observed = f"{unit.active or '?'}/{unit.enabled or 'not-found'}"
    ok = {
        "active": unit.is_active,
        "inactive": bool(unit.active) and not unit.is_active,
        "enabled": unit.is_enabled,
        "disabled": unit.is_disabled,
    }[spec.state]
    message = f"service {spec.name} is {observed} (is-active/is-enabled)"
    if ok:
        return Finding.passed(message, observed=observed, expected=spec.state)
    return Finding.failed(f"{message}, expected {spec.state}", observed=observed, expected=spec.state)


_EVALUATORS: dict[type[_Spec], Callable[..., Finding]] = {
    FileSpec: _eval_file,
    ConfigSpec: _eval_config,
    CommandSpec: _eval_command,
    PackageSpec: _eval_package,
    ServiceSpec: _eval_service,
}


# --- loading ------------------------------------------------------------------------------


def _build(raw: Any, at: tuple[str | int, ...], file: str, lines: LineMap) -> tuple[Check | None, list[ConfigProblem]]:
    where = lines.nearest(at)
    if not isinstance(raw, Mapping):
        return None, [ConfigProblem(file, where, format_path(at), "a check must be a mapping of keys")]
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in TYPES:
        got = "missing" if kind is None else f"{kind!r}"
        hint = suggest(kind, TYPES) if isinstance(kind, str) else ""
        msg = f"type is {got}{hint}; use one of {', '.join(TYPES)}"
        return None, [ConfigProblem(file, lines.nearest((*at, "type")), format_path((*at, "type")), msg)]
    spec, problems = validate_model(TYPES[kind], dict(raw), file=file, lines=lines, prefix=at)
    meta = {k: raw[k] for k in _META_KEYS if k in raw}
    tags = raw.get("tags") or []
    if isinstance(tags, list):  # anything else is left for CheckMeta to reject
        meta["tags"] = [*tags, "declarative"] if "declarative" not in tags else tags
    checked_meta, meta_problems = validate_model(CheckMeta, meta, file=file, lines=lines, prefix=at)
    problems += meta_problems
    if problems or spec is None or checked_meta is None:
        return None, problems
    probe = _probe_for(spec, checked_meta.id)
    evaluate = partial(_EVALUATORS[type(spec)], spec, probe)
    description = spec.description or f"Declarative {kind} check ({file})."
    return Check(checked_meta, (probe,), evaluate, source=file, description=description), []


def parse_declarative_text(data: Any, file: str, lines: LineMap) -> list[Check]:
    """Checks from already-parsed YAML ``data``; raises ConfigError with every problem found."""
    if data is None:
        raise _error([ConfigProblem(file, 1, "", "empty check file")])
    if isinstance(data, Mapping) and "checks" in data:
        extra = [k for k in data if k != "checks"]
        if extra:
            raise _error(
                [
                    ConfigProblem(
                        file,
                        lines.nearest((str(extra[0]),)),
                        str(extra[0]),
                        "a file with checks: holds nothing else; move this key into a check",
                    )
                ]
            )
        items = data["checks"]
        if not isinstance(items, list) or not items:
            raise _error([ConfigProblem(file, lines.nearest(("checks",)), "checks", "must be a non-empty list")])
        entries: list[tuple[Any, tuple[str | int, ...]]] = [(item, ("checks", i)) for i, item in enumerate(items)]
    else:
        entries = [(data, ())]
    checks: list[Check] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for raw, at in entries:
        check, found = _build(raw, at, file, lines)
        problems += found
        if check is None:
            continue
        line = lines.nearest((*at, "id"))
        if check.id in seen:
            problems.append(
                ConfigProblem(
                    file,
                    line,
                    format_path((*at, "id")),
                    f"duplicate check id {check.id} (first at line {seen[check.id]})",
                )
            )
            continue
        seen[check.id] = line
        checks.append(check)
    if problems:
        raise _error(sorted(problems, key=lambda p: p.line or 0))
    return checks


def load_declarative_file(path: Path) -> list[Check]:
    """The registry's loader for ``.yaml`` / ``.yml`` check files."""
    doc = read_yaml(path, _error)
    if doc.problems:
        raise _error(doc.problems)
    return parse_declarative_text(doc.data, str(path), doc.lines)
