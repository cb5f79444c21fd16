"""Cross-checks of an inventory against the loaded checks: names that would silently do nothing.

The inventory loader (itops/inventory.py) validates the file on its own; these checks need the
registry, so ``inventory validate`` and ``audit`` run them once both are loaded:

* a group's ``checks:`` pattern or a waiver's ``check`` that matches no loaded check is an
  error (exit 4) with a did-you-mean: ``sshd.*`` would otherwise select nothing, and a waiver
  for ``ssh.x11_forwarding_disable`` would be listed as active while waiving nothing;
* a var that no check reads as a parameter, no part of itops reads, and no playbook template
  uses (``{{ hosts.NAME.vars.KEY }}``) is a warning: ``ssh_max_auth_trys: 3`` changes nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from itops.errors import ConfigProblem, InventoryError
from itops.inventory import Inventory
from itops.registry import Registry
from itops.resources import bundled_dir
from itops.waivers import WaiverEntry

#: Vars read by itops itself rather than by a check parameter (itops/backup/cloud.py).
ENGINE_VARS = frozenset({"s3_verify_max_bytes"})

_TEMPLATE_VAR = re.compile(r"\bhosts\.[^\s.}]+(?:\.[^\s.}]+)*?\.vars\.([A-Za-z_]\w*)")


def pattern_problems(inv: Inventory, registry: Registry, waivers: Sequence[WaiverEntry] = ()) -> list[ConfigProblem]:
    """A problem for every group ``checks:`` pattern and waiver ``check`` matching no loaded check."""
    problems: list[ConfigProblem] = []
    file = str(inv.path)
    for group in inv.groups.values():
        for i, pattern in enumerate(group.checks):
            if not registry.matches_any(pattern):
                problems.append(
                    ConfigProblem(
                        file, group.line or None, f"groups.{group.name}.checks[{i}]", registry.no_match_message(pattern)
                    )
                )
    index: dict[str, int] = {}
    for entry in waivers:
        i = index[entry.source] = index.get(entry.source, -1) + 1
        pattern = entry.rule.check
        if not registry.matches_any(pattern):
            path = f"waivers[{i}].check" if entry.source == file else f"[{i}].check"
            problems.append(
                ConfigProblem(
                    entry.source, entry.rule.line or None, path, "waiver " + registry.no_match_message(pattern)
                )
            )
    return problems


def playbook_var_names(paths: Iterable[Path]) -> set[str]:
    """Inventory var names that playbook templates use (``{{ hosts.db1.vars.KEY }}``)."""
    names: set[str] = set()
    for path in paths:
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        for f in files:
            try:
                names |= set(_TEMPLATE_VAR.findall(f.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    return names


def known_var_names(registry: Registry, playbooks: Iterable[Path] = ()) -> set[str]:
    """Every var name that does something: check parameters, itops' own vars, playbook templates."""
    names = {p for check in registry for p in check.meta.params} | set(ENGINE_VARS)
    return names | playbook_var_names([bundled_dir("playbooks"), *playbooks])


def unknown_var_warnings(inv: Inventory, registry: Registry, playbooks: Iterable[Path] = ()) -> list[str]:
    """One warning per var (and where it is set) that nothing reads, with the closest known name.

    Vars an inventory source set (``inv.source_vars``: an Ansible inventory's vars serve its playbooks)
    are not warned about."""
    known = known_var_names(registry, playbooks)
    file = str(inv.path)
    inherited: set[str] = set(inv.default_vars)
    places: list[tuple[str, int, Mapping[str, Any]]] = [("defaults.vars", 0, inv.default_vars)]
    for name, site in inv.sites.items():
        places.append((f"sites.{name}.vars", site.line, site.vars))
        inherited |= set(site.vars)
    for name, group in inv.groups.items():
        places.append((f"groups.{name}.vars", group.line, group.vars))
        inherited |= set(group.vars)
    for name, cloud in inv.clouds.items():
        places.append((f"clouds.{name}.vars", cloud.line, cloud.vars))
    for name, host in inv.hosts.items():
        own = {k: v for k, v in host.vars.items() if k not in inherited}
        places.append((f"hosts.{name}.vars", host.line, own))
    warnings = []
    for where, line, variables in places:
        from_source = inv.source_vars.get(where.removesuffix(".vars"), frozenset())
        for var in variables:
            if var in known or var in from_source:
                continue
            close = difflib.get_close_matches(var, sorted(known), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else " (`itops checks show ID` lists a check's parameters)"
            loc = f"{file}:{line}" if line else file
            warnings.append(f"{loc}: {where}.{var}: no check reads this var and no playbook uses it{hint}")
    return warnings


def raise_for_unmatched_patterns(inv: Inventory, registry: Registry, waivers: Sequence[WaiverEntry] = ()) -> None:
    """Raise :class:`InventoryError` (exit 4) listing every pattern that matches no check."""
    problems = pattern_problems(inv, registry, waivers)
    if problems:
        raise InventoryError(problems)
