"""``sources: [{ansible: PATH}]``: the hosts, groups and vars of an Ansible inventory.

Ansible parses the inventory itself (``ansible-inventory -i PATH --list --export``, from the
``itops[ansible]`` extra), so INI, YAML, ``host_vars/``/``group_vars/`` folders, patterns like
``web[01:20]`` and inventory plugins all read exactly as ``ansible`` reads them. ``--export``
keeps group vars on their groups, so they become itops group vars (and the inventory file's
own group vars can override them per key).

Connection settings are resolved per host the way Ansible resolves inventory vars: ``all``,
then the host's groups ordered by (depth, ``ansible_group_priority``, name), then the host's
own vars (``ansible.inventory.helpers.sort_groups`` and ``get_group_vars``). Mapped:

=================================  ====================================
``ansible_host``                   ``address`` (default: the host name)
``ansible_port``                   ``port``
``ansible_user``                   ``user``
``ansible_ssh_private_key_file``   ``identity_file``
``ansible_become``                 ``sudo``
``ansible_ssh_common_args`` /      ``jump``: ``-J HOST`` or ``-o ProxyJump=HOST`` naming a host
``ansible_ssh_extra_args``         of the inventory (by name, else by its unique address)
=================================  ====================================

Every other ``ansible_*`` variable (passwords included) is Ansible's own and is not copied;
hosts whose ``ansible_connection`` is not SSH (``local``, ``docker``, ``winrm`` ...) are left out.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from itops.sources import SourceData, SourceError

EXTRA_HINT = "install the ansible extra: pip install 'itops[ansible]' (it provides ansible-inventory)"
SSH_CONNECTIONS = frozenset(
    {
        "ssh",
        "paramiko",
        "paramiko_ssh",
        "smart",
        "ansible.builtin.ssh",
        "ansible.legacy.ssh",
        "ansible.builtin.paramiko_ssh",
        "ansible.netcommon.libssh",
    }
)
TIMEOUT = 300.0  # seconds: inventory plugins may query remote APIs
_TRUE = frozenset({"true", "yes", "on", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "off", "0", "n", "f", ""})


def ansible_inventory_command() -> str:
    """``ansible-inventory`` beside this interpreter (same venv as itops), else on PATH."""
    beside = Path(sys.executable).with_name("ansible-inventory")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ansible-inventory")
    if found is None:
        raise SourceError("ansible-inventory not found (ansible-core is not installed)", hint=EXTRA_HINT)
    return found


def run_ansible_inventory(path: Path, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``ansible-inventory -i PATH --list --export`` as JSON; a source Ansible cannot parse is an error."""
    if not path.exists():
        raise SourceError(f"ansible inventory not found: {path}")
    argv = [ansible_inventory_command(), "-i", str(path), "--list", "--export"]
    # an unparseable source is an error, not Ansible's warning plus an empty inventory
    env = dict(
        os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="False"
    )
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SourceError(f"ansible-inventory -i {path} did not finish within {timeout:g}s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln]
        why = " ".join(lines[-3:]).strip() or f"exit {proc.returncode}"
        raise SourceError(f"ansible-inventory -i {path} failed: {why[:500]}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise SourceError(f"ansible-inventory -i {path} printed no JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SourceError(f"ansible-inventory -i {path} printed {type(doc).__name__}, not a mapping")
    return doc


def read_ansible_source(path: Path) -> SourceData:
    """The itops hosts and groups of the Ansible inventory at ``path``."""
    return convert(run_ansible_inventory(path), str(path))


# --- conversion (pure: the JSON of `ansible-inventory --list --export` in, inventory entries out) ------


def _own_vars(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not str(k).startswith("ansible_")}


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SourceError(f"{what}: {value!r} is not a boolean")


def proxy_jump(args: str, what: str) -> str | None:
    """The first hop of ``-J HOST`` / ``-o ProxyJump=HOST`` in ssh arguments, as a host name (no user@, :port)."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise SourceError(f"{what}: cannot split {args!r}: {exc}") from None
    value: str | None = None
    for i, word in enumerate(words):
        option = None
        if word == "-o" and i + 1 < len(words):
            option = words[i + 1]
        elif word.startswith("-o") and len(word) > 2:
            option = word[2:]
        if option is not None:
            key, _, val = option.replace("=", " ", 1).partition(" ")
            if key.lower() == "proxyjump":
                value = val.strip()
            elif key.lower() == "proxycommand":
                raise SourceError(f"{what}: ProxyCommand is not supported; use ProxyJump (-J) to name a jump host")
        elif word == "-J" and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith("-J") and len(word) > 2:
            value = word[2:]
    if not value or value.lower() == "none":
        return None
    if "," in value:
        raise SourceError(f"{what}: a chain of jump hosts ({value}) is not supported; itops follows one jump host")
    host = value.rpartition("@")[2]
    if host.startswith("["):  # [host]:port
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


def _depths(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Ansible's group depth: ``all`` 0, a group one more than its deepest parent (top level: 1)."""
    parents: dict[str, set[str]] = {g: set() for g in groups}
    for name, spec in groups.items():
        for child in spec.get("children") or ():
            parents.setdefault(child, set()).add(name)
    depth: dict[str, int] = {}

    def of(group: str, seen: frozenset[str]) -> int:
        if group == "all":
            return 0
        if group not in depth:
            ups = [p for p in parents.get(group, ()) if p not in seen]
            depth[group] = max((of(p, seen | {group}) + 1 for p in ups), default=1)
        return depth[group]

    return {g: of(g, frozenset()) for g in parents}


def convert(doc: Mapping[str, Any], where: str) -> SourceData:
    """Turn ``ansible-inventory --list --export`` JSON into inventory ``hosts``/``groups`` entries."""
    meta = doc.get("_meta")
    hostvars: Mapping[str, Mapping[str, Any]] = (meta.get("hostvars") if isinstance(meta, Mapping) else None) or {}
    groups = {str(k): v for k, v in doc.items() if k != "_meta" and isinstance(v, Mapping)}
    depth = _depths(groups)
    parents: dict[str, set[str]] = {}
    direct: dict[str, list[str]] = {}
    for name, spec in groups.items():
        for child in spec.get("children") or ():
            parents.setdefault(str(child), set()).add(name)
        for host in spec.get("hosts") or ():
            direct.setdefault(str(host), []).append(name)
    hosts = list(dict.fromkeys([*map(str, hostvars), *direct]))

    def ancestors(group: str, seen: set[str]) -> None:
        if group in seen:
            return
        seen.add(group)
        for p in parents.get(group, ()):
            ancestors(p, seen)

    def priority(group: str) -> int:
        value = (groups.get(group, {}).get("vars") or {}).get("ansible_group_priority", 1)
        try:
            return int(value)
        except (TypeError, ValueError):
            return 1

    out = SourceData()
    effective: dict[str, dict[str, Any]] = {}
    for host in hosts:
        member: set[str] = {"all"}
        for g in direct.get(host, []):
            ancestors(g, member)
        merged: dict[str, Any] = {}
        for g in sorted(member, key=lambda g: (depth.get(g, 1), priority(g), g)):
            merged.update(groups.get(g, {}).get("vars") or {})
        merged.update(hostvars.get(host) or {})
        effective[host] = merged
    skipped = {h for h, v in effective.items() if str(v.get("ansible_connection", "ssh")) not in SSH_CONNECTIONS}
    addresses: dict[str, list[str]] = {}
    for host in hosts:
        if host not in skipped:
            addresses.setdefault(str(effective[host].get("ansible_host") or host), []).append(host)
    for host in hosts:
        if host in skipped:
            continue
        v = effective[host]
        what = f"ansible host {host}"
        entry: dict[str, Any] = {"address": str(v.get("ansible_host") or v.get("ansible_ssh_host") or host)}
        port = v.get("ansible_port", v.get("ansible_ssh_port"))
        if port is not None:
            try:
                entry["port"] = int(port)
            except (TypeError, ValueError):
                raise SourceError(f"{what}: ansible_port {port!r} is not a number") from None
        user = v.get("ansible_user", v.get("ansible_ssh_user"))
        if user:
            entry["user"] = str(user)
        key = v.get("ansible_ssh_private_key_file", v.get("ansible_private_key_file"))
        if key:
            entry["identity_file"] = str(key)
        if "ansible_become" in v:
            entry["sudo"] = _as_bool(v["ansible_become"], f"{what}: ansible_become")
        args = " ".join(str(v[k]) for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args") if v.get(k))
        jump = proxy_jump(args, what) if args else None
        if jump is not None:
            by_address = addresses.get(jump, [])
            entry["jump"] = jump if jump in effective else by_address[0] if len(by_address) == 1 else jump
        own = _own_vars(hostvars.get(host) or {})
        if own:
            entry["vars"] = own
        out.hosts[host] = entry
    for name, spec in groups.items():
        members = [str(h) for h in spec.get("hosts") or () if str(h) not in skipped]
        children = [str(c) for c in spec.get("children") or () if str(c) != "ungrouped"]
        variables = _own_vars(spec.get("vars") or {})
        if name == "ungrouped" or (name == "all" and not variables):
            continue
        entry = {"hosts": members, "children": children, "vars": variables}
        if name == "all":  # the ancestor of every group: its vars come first, as in Ansible
            entry["hosts"] = [h for h in hosts if h not in skipped and set(direct.get(h, [])) <= {"ungrouped"}]
            entry["description"] = f"every host of the Ansible inventory {where}"
        out.groups[name] = {k: val for k, val in entry.items() if val}
    return out
