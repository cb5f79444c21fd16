"""A run's FAIL results → per-host fix plans → a reviewable sh script per host, or an Ansible playbook.

Only the check's declared fix (:class:`itops.remediate.spec.Fix`) becomes code. What the run
recorded (messages, evidence, resource names: host-controlled text) is shown in ``#`` comments
with every control character escaped, and reaches a command only as a ``shlex.quote``-d
argument (sh) or an ``!unsafe`` string (Ansible), after checks on its shape (a file fix's
resource must be an absolute path).
"""

from __future__ import annotations

import posixpath
import re
import shlex
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from itops.checkapi import Check
from itops.model import Result, Status
from itops.remediate.shlib import SHLIB, SSHD_RELOAD
from itops.remediate.spec import PLACEHOLDER_RE, Fix

__all__ = ["HostFixes", "PlannedFix", "example_sh", "plan_fixes", "render_ansible", "render_sh", "safe_comment"]

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_EVIDENCE_LINES = 8


def safe_comment(text: str, limit: int = 300) -> str:
    """``text`` made fit for one ``#`` comment line: control characters (newlines too) as \\xNN, capped."""
    text = _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UnusableValue(ValueError):
    """A value from the run or a parameter that cannot go into this fix (the fix is then left out)."""


@dataclass(frozen=True)
class PlannedFix:
    """One check's fix for one host: what failed, and the shell lines and Ansible tasks that fix it."""

    host: str
    check_id: str
    title: str
    severity: str
    frameworks: Mapping[str, tuple[str, ...]]
    risk: str
    failed: tuple[str, ...]  # what the run saw (host-controlled: comments only, escaped)
    sh: tuple[str, ...]  # shell lines, every value quoted
    ansible: tuple[dict[str, Any], ...]
    note: str = ""

    def function_name(self, index: int) -> str:
        return f"itops_fix_{index}"


@dataclass
class HostFixes:
    """Everything planned for one host: the fixes, and the FAILs left out (and why)."""

    host: str
    fixes: list[PlannedFix] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (check id, why)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def _usable(name: str, value: str) -> str:
    if _CONTROL_RE.search(value):  # a line break, NUL or terminal escape: a reviewer could not read it
        raise UnusableValue(f"{name} holds a line break or control character: {safe_comment(value, 80)}")
    return value


def _safe_path(path: str) -> str:
    if not path.startswith("/") or posixpath.normpath(path) != path or "//" in path:
        raise UnusableValue(f"not a plain absolute path: {safe_comment(path, 120)}")
    return path


class Unsafe(str):
    """A string Ansible must never template (dumped as ``!unsafe``): values from the run and parameters."""


def _unsafe_representer(dumper: yaml.SafeDumper, data: Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(data), style="'")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, _unsafe_representer)


def _steps(fix: Fix, check: Check, values: Mapping[str, str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The shell lines and Ansible tasks of ``fix`` with ``values`` filled in (raises UnusableValue)."""
    q = shlex.quote
    sh: list[str] = []
    tasks: list[dict[str, Any]] = []
    tag = check.id
    for key, raw in fix.sshd.items():
        value = _usable(key, _fill(raw, values))
        sh.append(f"itops_sshd_set {q(key)} {q(value)} || return 1")
        rx = rf"(?i)^\s*{re.escape(key)}\s"
        tasks.append(
            {
                "name": Unsafe(f"{tag}: sshd {key} {value}"),
                "ansible.builtin.lineinfile": {
                    "path": "/etc/ssh/sshd_config",
                    "regexp": rx,
                    "line": Unsafe(f"{key} {value}"),
                    "insertbefore": "BOF",
                    "firstmatch": True,
                    "validate": "/usr/sbin/sshd -t -f %s",
                },
                "notify": "itops reload sshd",
            }
        )
        tasks.append(
            {
                "name": Unsafe(f"{tag}: sshd drop-ins setting {key}"),
                "ansible.builtin.find": {"paths": "/etc/ssh/sshd_config.d", "patterns": "*.conf"},
                "register": "itops_sshd_dropins",
            }
        )
        tasks.append(
            {
                "name": Unsafe(f"{tag}: comment out {key} in the drop-ins"),
                "ansible.builtin.replace": {
                    "path": "{{ item.path }}",
                    "regexp": rf"(?im)^(\s*{re.escape(key)}\s.*)$",
                    "replace": r"# itops: \1",
                },
                "loop": "{{ itops_sshd_dropins.files }}",
                "notify": "itops reload sshd",
            }
        )
    for f in fix.files:
        path = _safe_path(_usable("path", _fill(f.path, values)))
        mode = _fill(f.mode or "", values)
        if mode and not re.fullmatch(r"0?[0-7]{3,4}", mode):
            raise UnusableValue(f"mode {safe_comment(mode, 40)} is not octal")
        sh.append(f"itops_file {q(path)} {q(mode)} {q(f.owner or '')} {q(f.group or '')} || return 1")
        args: dict[str, Any] = {"path": Unsafe(path)}
        if mode:
            args["mode"] = mode if mode.startswith("0") else "0" + mode
        if f.owner:
            args["owner"] = f.owner
        if f.group:
            args["group"] = f.group
        tasks.append({"name": Unsafe(f"{tag}: {path}"), "ansible.builtin.file": args})
    for ln in fix.lines:
        value = _usable(ln.key, _fill(ln.value, values))
        sh.append(f"itops_set_line {q(ln.path)} {q(ln.key)} {q(ln.sep)} {q(value)} || return 1")
        tasks.append(
            {
                "name": Unsafe(f"{tag}: {ln.path}: {ln.key}"),
                "ansible.builtin.lineinfile": {
                    "path": ln.path,
                    "regexp": rf"^\s*{re.escape(ln.key)}[\s=]",
                    "line": Unsafe(f"{ln.key}{ln.sep}{value}"),
                    "create": True,
                },
            }
        )
    for name, raw in fix.sysctl.items():
        value = _usable(name, _fill(raw, values))
        sh.append(f"itops_sysctl {q(name)} {q(value)} || return 1")
        tasks.append(
            {
                "name": Unsafe(f"{tag}: {name} = {value} (persistent)"),
                "ansible.builtin.lineinfile": {
                    "path": "/etc/sysctl.d/99-zz-itops.conf",
                    "create": True,
                    "mode": "0644",
                    "regexp": rf"^\s*{re.escape(name)}\s*=",
                    "line": Unsafe(f"{name} = {value}"),
                },
            }
        )
        tasks.append(
            {
                "name": Unsafe(f"{tag}: {name} = {value} (running kernel)"),
                "ansible.builtin.command": {"argv": ["sysctl", "-q", "-w", Unsafe(f"{name}={value}")]},
                "changed_when": False,
            }
        )
    for module in fix.modules:
        sh.append(f"itops_module_disable {q(module)} || return 1")
        tasks.append(
            {
                "name": Unsafe(f"{tag}: modprobe refuses {module}"),
                "ansible.builtin.copy": {
                    "dest": f"/etc/modprobe.d/itops-{module}.conf",
                    "mode": "0644",
                    "content": f"install {module} /bin/false\nblacklist {module}\n",
                },
            }
        )
    for package in fix.packages_absent:
        sh.append(f"itops_package_absent {q(package)} || return 1")
        tasks.append(
            {
                "name": Unsafe(f"{tag}: remove package {package}"),
                "ansible.builtin.package": {"name": package, "state": "absent"},
            }
        )
    if fix.sh:
        quoted = {k: q(_usable(k, v)) for k, v in values.items() if k in fix.placeholders()}
        body = _fill(fix.sh, quoted)
        sh.extend(line for line in body.splitlines() if line.strip())
        if fix.ansible:
            task_vars = {k: Unsafe(v) for k, v in values.items() if k in fix.placeholders() or k == "resource"}
            tasks.extend({**t, "vars": {**t.get("vars", {}), **task_vars}} for t in fix.ansible)
        else:
            tasks.append(
                {"name": Unsafe(f"{tag}: fix (POSIX sh)"), "ansible.builtin.shell": {"cmd": Unsafe(SHLIB + body)}}
            )
    return sh, tasks


def example_sh(check: Check) -> list[str]:
    """The shell lines the check's fix writes with its default parameters (``RESOURCE`` for the failing
    resource), for `itops checks show`."""
    if check.meta.fix is None or check.meta.fix.manual:
        return []
    values = {name: _text(v) for name, v in check.meta.params.items()}
    try:
        return _steps(check.meta.fix, check, {**values, "resource": "/RESOURCE"})[0]
    except UnusableValue as exc:
        return [f"(not writable with the defaults: {exc})"]


def _failed_lines(results: Sequence[Result]) -> tuple[str, ...]:
    out: list[str] = []
    for r in results:
        where = f" [{r.resource}]" if r.resource else ""
        out.append(f"{r.message}{where}")
        ev = r.evidence
        if ev.observed or ev.expected:
            out.append(f"  observed: {ev.observed}; expected: {ev.expected}")
        out.extend(f"  | {line}" for line in ev.excerpt.splitlines()[:3])
    if len(out) > _MAX_EVIDENCE_LINES:
        out = [*out[:_MAX_EVIDENCE_LINES], f"... ({len(out) - _MAX_EVIDENCE_LINES} more line(s) in the run)"]
    return tuple(safe_comment(line) for line in out)


def plan_fixes(
    results: Iterable[Result],
    checks: Mapping[str, Check],
    params_for: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    *,
    include_risky: bool = False,
) -> list[HostFixes]:
    """Per host (in name order), the fixes for the run's FAIL results (WAIVED and others are left alone).

    ``params_for[host][check_id]`` are the check's effective parameters on that host (defaults
    when missing). A FAIL whose check has no fix, a manual one, a risky one without
    ``include_risky``, or a value the fix cannot use is listed in ``left_out`` with the reason.
    """
    by_host: dict[str, dict[str, list[Result]]] = {}
    for r in results:
        if r.status is Status.FAIL:
            by_host.setdefault(r.target, {}).setdefault(r.check_id, []).append(r)
    plans: list[HostFixes] = []
    for host in sorted(by_host):
        plan = HostFixes(host)
        for check_id in sorted(by_host[host]):
            fails = by_host[host][check_id]
            check = checks.get(check_id)
            fix = check.meta.fix if check is not None else None
            if check is None:
                plan.left_out.append((check_id, "check not in the registry"))
                continue
            if fix is None:
                plan.left_out.append((check_id, "no automatic fix declared; see its remediation"))
                continue
            if fix.manual:
                plan.left_out.append((check_id, f"manual: {fix.manual}"))
                continue
            if fix.risk == "high" and not include_risky:
                plan.left_out.append((check_id, "risk: high (give --include-risky to include it)"))
                continue
            if fix.resources:
                covered = [r for r in fails if re.fullmatch(fix.resources, r.resource)]
                for r in fails:
                    if r not in covered:
                        plan.left_out.append(
                            (check_id, f"no automatic fix for {r.resource or 'this finding'}: see its remediation")
                        )
                if not covered:
                    continue
                fails = covered
            params = {**check.meta.params, **((params_for or {}).get(host, {}).get(check_id, {}))}
            base = {name: _text(v) for name, v in params.items()}
            resources = sorted({r.resource for r in fails}) if "resource" in fix.placeholders() else [""]
            sh: list[str] = []
            tasks: list[dict[str, Any]] = []
            try:
                for resource in resources:
                    s, t = _steps(fix, check, {**base, "resource": resource})
                    sh += s
                    tasks += t
            except UnusableValue as exc:
                plan.left_out.append((check_id, f"not fixed automatically: {exc}"))
                continue
            plan.fixes.append(
                PlannedFix(
                    host=host,
                    check_id=check_id,
                    title=check.meta.title,
                    severity=check.meta.severity.value,
                    frameworks=check.meta.frameworks,
                    risk=fix.risk,
                    failed=_failed_lines(fails),
                    sh=tuple(sh),
                    ansible=tuple(tasks),
                    note=fix.note,
                )
            )
        # permission and ownership fixes first: a tool another fix runs may copy a file's mode into a new
        # file (chage writes /etc/shadow- with the mode /etc/shadow has at that moment)
        plan.fixes.sort(key=lambda f: not _only_files(checks[f.check_id].meta.fix))
        plans.append(plan)
    return plans


def _only_files(fix: Fix | None) -> bool:
    return (
        fix is not None
        and bool(fix.files)
        and not (fix.sshd or fix.lines or fix.sysctl or fix.modules or fix.packages_absent or fix.sh)
    )


def _controls(frameworks: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{fw} {', '.join(ids)}" for fw, ids in sorted(frameworks.items()) if ids)


def fix_function(fix: PlannedFix, index: int) -> str:
    """One fix as a shell function with its review comments (check, title, controls, what failed)."""
    lines = [
        f"# --- {fix.check_id}: {safe_comment(fix.title)} (severity {fix.severity}, risk {fix.risk})",
        f"# controls: {safe_comment(_controls(fix.frameworks))}",
        *(f"# failed: {line}" for line in fix.failed),
    ]
    if fix.note:
        lines.append(f"# note: {safe_comment(fix.note)}")
    lines.append(f"{fix.function_name(index)}() {{")
    lines += [f"  {line}" for line in fix.sh]
    lines.append("}")
    return "\n".join(lines)


def render_sh(plan: HostFixes, run_id: str, *, created: float | None = None) -> str:
    """The reviewable POSIX sh script for one host: header, the function library, one function per fix,
    and a main part that runs each fix in turn, keeps going when one fails, and exits 1 if any failed."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(created if created is not None else time.time()))
    head = [
        "#!/bin/sh",
        f"# itops remediation for host {safe_comment(plan.host)}",
        f"# from run {run_id} (FAIL results only), written {stamp}",
        "# Review before running. Nothing here has been applied. Every fix is idempotent: running the",
        "# script again changes nothing more. Run as root (or with sudo).",
    ]
    for check_id, why in plan.left_out:
        head.append(f"# left out: {check_id}: {safe_comment(why)}")
    parts = ["\n".join(head), SHLIB.rstrip()]
    parts += [fix_function(f, i) for i, f in enumerate(plan.fixes, 1)]
    main = ["itops_failed=0"]
    for i, f in enumerate(plan.fixes, 1):
        main.append(f"echo {shlex.quote('== ' + f.check_id)}")
        main.append(
            f"( {f.function_name(i)} ) || {{ itops_failed=$((itops_failed + 1)); "
            f"echo {shlex.quote('FAILED: ' + f.check_id)} >&2; }}"
        )
    main.append('[ "$itops_failed" -eq 0 ] || { echo "$itops_failed fix(es) failed" >&2; exit 1; }')
    parts.append("\n".join(main))
    return "\n\n".join(parts) + "\n"


def render_ansible(plans: Sequence[HostFixes], run_id: str) -> str:
    """One playbook, a play per host, every task named after its check; values as ``!unsafe`` strings."""
    head = [
        f"# itops remediation playbook from run {run_id} (FAIL results only). Review before running;",
        "# nothing has been applied. Needs python3 on the hosts (Ansible modules run there).",
    ]
    plays: list[dict[str, Any]] = []
    for plan in plans:
        for check_id, why in plan.left_out:
            head.append(f"# {safe_comment(plan.host)}: left out {check_id}: {safe_comment(why)}")
        if not plan.fixes:
            continue
        tasks: list[dict[str, Any]] = []
        for fix in plan.fixes:
            for task in fix.ansible:
                tasks.append({**task, "tags": [fix.check_id]})
        plays.append(
            {
                "name": Unsafe(f"itops remediation of {plan.host} (run {run_id})"),
                "hosts": Unsafe(plan.host),
                "become": True,
                "gather_facts": True,
                "tasks": tasks,
                "handlers": [
                    {
                        # not ansible.builtin.service state=reloaded: that STARTS a stopped sshd
                        # (a chroot, a container, a deliberately stopped or socket-activated one)
                        "name": "itops reload sshd",
                        "ansible.builtin.shell": {"cmd": Unsafe(SSHD_RELOAD + "itops_sshd_reload\n")},
                        "register": "itops_sshd_reload",
                        "changed_when": "'reloaded:' in itops_sshd_reload.stdout",
                    }
                ],
            }
        )
        for fix in plan.fixes:
            head.append(
                f"# {safe_comment(plan.host)}: {fix.check_id}: {safe_comment(fix.title)} "
                f"[{safe_comment(_controls(fix.frameworks))}]"
            )
            head += [f"#   failed: {line}" for line in fix.failed]
    body = yaml.dump(plays, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=False) if plays else "[]\n"
    return "\n".join(head) + "\n---\n" + body
