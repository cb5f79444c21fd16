"""Load and validate an inventory file (``inventory/*.yaml``) into typed, frozen objects.

:func:`load_inventory` reports every problem at once (file, line, key path, message) as
:class:`~itops.errors.InventoryError`: YAML syntax, duplicate keys, unknown keys (with a
suggestion), wrong types, bad durations/sizes, unknown sites/groups/hosts/clouds, group
and jump-host cycles, and secrets written inline.

Membership: a host lists its ``groups`` and/or a group lists its ``hosts`` (both merge).
A group's ``children`` are its subgroups: a host in a child group is also in every
ancestor group, and ``Host.groups`` lists them all.

Variable merge order (later wins; top-level keys replace, mappings are not deep-merged):

1. ``defaults.vars`` (fleet-wide)
2. the host's site ``vars``
3. the vars of each of the host's groups, ancestor groups before child groups, groups at
   the same depth in alphabetical order (depth = longest chain of parents above a group)
4. the host's own ``vars``

SSH settings: built-in defaults (user root, port 22, known_hosts ``~/.ssh/known_hosts``,
connect timeout 10s, command timeout 60s, banner and auth timeouts = connect timeout,
no sudo) <- ``defaults.ssh`` <- the host's own keys (``port``, ``user``, ``known_hosts``,
...). A host's ``known_hosts`` replaces the default list; setting ``password_env`` or
``password_file`` on a host replaces both from the defaults. ``~`` is expanded and
relative paths (identity_file, known_hosts, password_file, checks_dirs) are resolved
against the inventory file's folder.

The user's OpenSSH client config (``~/.ssh/config`` when it exists; ``defaults.ssh.config: PATH``
another file, ``false`` none; :mod:`itops.sshconfig`) is looked up under the host's name, as
``ssh NAME`` would, and sits below the inventory: host keys <- ``defaults.ssh`` <- the config <-
built-in defaults. Without ``address`` the config's ``HostName`` (else the name) is the address;
without ``jump`` its ``ProxyJump`` chain is followed (a hop that names an inventory host is that
host; other hops are resolved through the config too and kept in ``Host.via``). ``Host.origins``
says where each effective value came from (``itops inventory list --format json``).

Checks: a host's ``checks`` is the union of the ``checks`` patterns of all its groups;
empty means every applicable check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from itops import plugins
from itops.errors import ConfigProblem, InventoryError
from itops.inlinesecrets import find_inline_secrets, inline_secret_paths
from itops.inventory_model import Group, Host, Inventory, SSHSettings, chain_length, depth_order, target_lines
from itops.inventory_schema import (
    AWSBackupVault,
    AWSSnapshotBackup,
    Backup,
    Cloud,
    DefaultsSpec,
    FileBackup,
    GroupSpec,
    HostSpec,
    PostgresDumpBackup,
    ResticBackup,
    RestoreTest,
    S3Backup,
    Site,
    SourceSpec,
    SSHSpec,
    TopSpec,
    WaiverRule,
    _Entry,
    restore_into_problem,
)
from itops.sources import SourceData, SourceError, combine, digest_with_sources, merge_section, source_vars
from itops.sshconfig import ClientConfig, ConfigEntry, Hop, SSHConfigProblem, load_client_config, parse_jump
from itops.transport.batch import DEFAULT_MAX_PROBE_OUTPUT
from itops.yamlload import (
    LineMap,
    format_path,
    raise_if_problems,
    read_yaml,
    suggest,
    unknown_name,
    validate_model,
)

__all__ = [
    "AWSBackupVault",
    "AWSSnapshotBackup",
    "Backup",
    "Cloud",
    "DefaultsSpec",
    "FileBackup",
    "Group",
    "GroupSpec",
    "Host",
    "HostSpec",
    "Inventory",
    "PostgresDumpBackup",
    "ResticBackup",
    "RestoreTest",
    "S3Backup",
    "SSHSettings",
    "SSHSpec",
    "Site",
    "TopSpec",
    "WaiverRule",
    "load_inventory",
    "target_lines",
]

BUILTIN_SSH: Mapping[str, Any] = MappingProxyType(
    {
        "user": "root",
        "port": 22,
        "identity_file": None,
        "known_hosts": ["~/.ssh/known_hosts"],
        "connect_timeout": 10.0,
        "command_timeout": 60.0,
        "sudo": False,
        "max_probe_output": DEFAULT_MAX_PROBE_OUTPUT,
    }
)
#: the connection values whose origin ``Host.origins`` records (with address and jump)
_ORIGIN_KEYS = frozenset({"user", "port", "identity_file", "known_hosts", "connect_timeout"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


# --- loading: schema problems, then cross-references, then the typed result ----------------


def load_inventory(path: str | Path) -> Inventory:
    """Load, validate and resolve an inventory file; raise InventoryError with ALL problems."""
    doc = read_yaml(path, InventoryError)
    if not doc.problems and not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"a {type(doc.data).__name__}, not a mapping"
        doc.problems.append(ConfigProblem(doc.file, 1, "", f"file is {what}: an inventory starts with `version: 1`"))
    raise_if_problems(doc.problems, InventoryError)
    loader = _Loader(Path(path), doc.file, doc.lines, doc.data)
    inventory = loader.load(doc.digest)
    raise_if_problems(loader.problems, InventoryError)
    assert inventory is not None
    return inventory


Where = tuple[str | int, ...]


class _Loader:
    """One inventory being validated: collects problems and keeps going after each one."""

    def __init__(self, path: Path, file: str, lines: LineMap, data: dict[str, Any]) -> None:
        self.path, self.file, self.lines, self.data = path, file, lines, data
        self.base = path.resolve().parent
        self.secrets = list(inline_secret_paths(data))
        self.problems = find_inline_secrets(data, file=file, lines=lines)
        self.origins: dict[tuple[str | int, ...], tuple[int, str]] = {}  # source-only entry -> (source index, what)
        self.client_config: ClientConfig | None = None
        #: one SSHSettings object per distinct value: hosts of a fleet mostly share theirs (a
        #: 10,000-host inventory held 20,000 copies of the same few settings, ~2 MB)
        self._settings: dict[SSHSettings, SSHSettings] = {}

    def problem(self, where: Where, message: str) -> None:
        origin = self.origins.get(tuple(where[:2]))
        if origin is not None:  # an entry no line of the file holds: point at the source that made it
            line = self.lines.nearest(("sources", origin[0]))
            message = f"{message} (from sources[{origin[0]}]: {origin[1]})"
        else:
            line = self.lines.nearest(where)
        self.problems.append(ConfigProblem(self.file, line, format_path(where), message))

    def validate(self, model: type[Any], data: object, where: Where) -> Any:
        spec, problems = validate_model(
            model, data, file=self.file, lines=self.lines, prefix=where, ignore=self.secrets
        )
        self.problems += problems
        return spec

    def section(self, section: str, raw: Mapping[str, Any], model: type[Any]) -> dict[str, Any]:
        specs: dict[str, Any] = {}
        for name, data in raw.items():
            where: Where = (section, name)
            if not _NAME_RE.match(name):
                self.problem(where, f"invalid name {name!r}: use letters, digits, '.', '_' and '-'")
            entry = self.entry(
                where, {} if data is None else data, self.backup_model(name, data) if model is Backup else model
            )
            if entry is not None:
                specs[name] = entry
        return specs

    def entry(self, where: Where, data: object, model: type[Any] | None) -> Any:
        """Validate one entry; a section entry (:class:`_Entry`) also gets its name and line."""
        if model is None:
            return None
        before = len(self.problems)
        spec = self.validate(model, data, where)
        if spec is None and isinstance(data, dict):
            # Validate again without the bad keys (quietly) so the rest is still cross-checked.
            paths = [p.path for p in self.problems[before:]]
            bad = {
                k
                for k in data
                if any(p == (w := format_path((*where, k))) or p.startswith((w + ".", w + "[")) for p in paths)
            }
            spec, _ = validate_model(model, {k: v for k, v in data.items() if k not in bad}, file="", lines=self.lines)
        if isinstance(spec, _Entry):
            name = str(where[-1]) if isinstance(where[-1], str) else ""
            spec = spec.model_copy(update={"name": name, "line": self.lines.nearest(where)})
        return spec

    def backup_model(self, name: str, data: object) -> type[Backup] | None:
        kind = data.get("kind") if isinstance(data, dict) else None
        known = plugins.backup_kinds()
        if isinstance(kind, str) and kind in known:
            model: type[Backup] = known[kind].model
            return model
        kinds = ", ".join(known)
        if not isinstance(data, dict):
            self.problem(("backups", name), f"expected a mapping, got {type(data).__name__}")
        elif kind is None:
            self.problem(("backups", name), f"missing required key 'kind' (one of: {kinds})")
        else:
            self.problem(("backups", name, "kind"), f"unknown kind {kind!r}{suggest(kind, known)}; kinds: {kinds}")
        return None

    def load(self, digest: str) -> Inventory | None:
        top: TopSpec | None = self.validate(TopSpec, self.data, ())
        if "version" not in self.data:
            self.problem((), "missing `version: 1` (the inventory format version) at the top")
        elif (version := self.data["version"]) != 1 or isinstance(version, bool):
            self.problem(("version",), f"unsupported version {version!r}: this itops reads version 1")
        raw_defaults = self.data.get("defaults")
        defaults = self.validate(DefaultsSpec, {} if raw_defaults is None else raw_defaults, ("defaults",))
        if defaults is not None:
            try:
                self.client_config = load_client_config(defaults.ssh.config, self.base)
            except SSHConfigProblem as exc:
                self.problem(("defaults", "ssh", "config"), str(exc))
        if top is None:
            return None
        sites: dict[str, Site] = self.section("sites", top.sites, Site)
        clouds: dict[str, Cloud] = self.section("clouds", top.clouds, Cloud)
        sources, from_sources = self.read_sources(top, clouds, defaults)
        if from_sources is not None:
            top = top.model_copy(
                update={
                    "hosts": merge_section(from_sources.hosts, top.hosts),
                    "groups": merge_section(from_sources.groups, top.groups),
                }
            )
            digest = digest_with_sources(digest, from_sources)
        groups: dict[str, GroupSpec] = self.section("groups", top.groups, GroupSpec)
        hosts: dict[str, HostSpec] = self.section("hosts", top.hosts, HostSpec)
        backups: dict[str, Backup] = self.section("backups", top.backups, Backup)
        waivers = [self.entry(("waivers", i), w, WaiverRule) for i, w in enumerate(top.waivers)]
        self.check_references(top, hosts, groups, backups)
        self.check_cycles(groups, hosts)
        checks_dirs = tuple(Path(self.local_path(folder)) for folder in top.checks_dirs)
        for i, folder in enumerate(checks_dirs):
            if not folder.is_dir():
                self.problem(("checks_dirs", i), f"folder not found: {folder}")
        if self.problems or defaults is None:
            return None
        return Inventory(
            path=self.path,
            digest=digest,
            concurrency=defaults.concurrency,
            hosts=(resolved := self.resolve(defaults, sites, groups, hosts)),
            groups=self.groups(groups, resolved),
            sites=sites,
            clouds={name: self.cloud_timeouts(defaults.ssh, c) for name, c in clouds.items()},
            backups=backups,
            waivers=tuple(waivers),
            checks_dirs=checks_dirs,
            default_vars=MappingProxyType(dict(defaults.vars)),
            sources=tuple(sources),
            source_vars=MappingProxyType(source_vars(from_sources)),
        )

    def read_sources(
        self, top: TopSpec, clouds: dict[str, Cloud], defaults: DefaultsSpec | None
    ) -> tuple[list[SourceSpec], SourceData | None]:
        """Validate ``sources:`` and read each one (Ansible, EC2); a source that fails is a problem."""
        specs: list[SourceSpec] = []
        parts: list[SourceData] = []
        for i, raw in enumerate(top.sources):
            spec: SourceSpec | None = self.validate(SourceSpec, raw, ("sources", i))
            if spec is None:
                continue
            if spec.aws_ec2 is not None and spec.aws_ec2.cloud not in clouds:
                self.problem(("sources", i, "aws_ec2", "cloud"), unknown_name("cloud", spec.aws_ec2.cloud, clouds))
                continue
            specs.append(spec)
            try:  # read even when the file has other problems: entries that name source hosts stay checkable
                if spec.ansible is not None:
                    from itops.sources.ansible import read_ansible_source

                    what = f"ansible {spec.ansible}"
                    data = read_ansible_source(Path(self.local_path(spec.ansible)))
                else:
                    from itops.sources.aws_ec2 import read_ec2_source

                    assert spec.aws_ec2 is not None
                    what = f"aws_ec2 {spec.aws_ec2.cloud}"
                    ssh = defaults.ssh if defaults is not None else SSHSpec()
                    data = read_ec2_source(spec.aws_ec2, self.cloud_timeouts(ssh, clouds[spec.aws_ec2.cloud]))
            except SourceError as exc:
                self.problem(("sources", i), str(exc) + (f" ({exc.hint})" if exc.hint else ""))
                continue
            for section, entries in (("hosts", data.hosts), ("groups", data.groups)):
                for name in entries:
                    if name not in getattr(top, section):
                        self.origins.setdefault((section, name), (i, what))
            parts.append(data)
        return specs, (combine(parts) if parts else None)

    def cloud_timeouts(self, d: SSHSpec, cloud: Cloud) -> Cloud:
        connect = cloud.connect_timeout or d.connect_timeout or BUILTIN_SSH["connect_timeout"]
        read = cloud.read_timeout or d.command_timeout or BUILTIN_SSH["command_timeout"]
        return cloud.model_copy(update={"connect_timeout": float(connect), "read_timeout": float(read)})

    def check_references(
        self, top: TopSpec, hosts: dict[str, HostSpec], groups: dict[str, GroupSpec], backups: dict[str, Backup]
    ) -> None:
        # Names come from the raw sections so an invalid group still counts as defined.
        sites, group_names, host_names, clouds = top.sites, top.groups, top.hosts, top.clouds
        for name, h in hosts.items():
            if h.site is not None and h.site not in sites:
                self.problem(("hosts", name, "site"), unknown_name("site", h.site, sites))
            for i, group in enumerate(h.groups):
                if group not in group_names:
                    self.problem(("hosts", name, "groups", i), unknown_name("group", group, group_names))
            if h.jump == name:
                self.problem(("hosts", name, "jump"), "a host cannot be its own jump host")
            elif h.jump is not None and h.jump not in host_names:
                others = [n for n in host_names if n != name]
                self.problem(("hosts", name, "jump"), unknown_name("host", h.jump, others))
        for name, g in groups.items():
            for i, child in enumerate(g.children):
                if child not in group_names:
                    self.problem(("groups", name, "children", i), unknown_name("group", child, group_names))
            for i, member in enumerate(g.hosts):
                if member not in host_names:
                    self.problem(("groups", name, "hosts", i), unknown_name("host", member, host_names))
        for name, b in backups.items():
            host, cloud = getattr(b, "host", None), getattr(b, "cloud", None)
            if host is not None and host not in host_names:
                self.problem(("backups", name, "host"), unknown_name("host", host, host_names))
            if cloud is not None and cloud not in clouds:
                self.problem(("backups", name, "cloud"), unknown_name("cloud", cloud, clouds))
            self.check_restore_target(name, b)

    def check_cycles(self, groups: dict[str, GroupSpec], hosts: dict[str, HostSpec]) -> None:
        reported: set[frozenset[str]] = set()

        done: set[str] = set()  # fully explored: no need to walk below again

        def visit(group: str, stack: list[str]) -> None:
            if group in done:
                return
            if group in stack:
                cycle = [*stack[stack.index(group) :], group]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    parent = stack[-1]
                    where = ("groups", parent, "children", groups[parent].children.index(group))
                    self.problem(where, "group cycle: " + " -> ".join(cycle))
            elif group in groups:
                for child in groups[group].children:
                    visit(child, [*stack, group])
                done.add(group)

        for name in groups:
            visit(name, [])
        for name in hosts:  # each host has at most one jump: follow the chain
            chain = [name]
            while (jump := getattr(hosts.get(chain[-1]), "jump", None)) not in (None, chain[-1]):
                assert jump is not None
                if jump in chain:
                    cycle = [*chain[chain.index(jump) :], jump]
                    if jump == name and frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.problem(("hosts", chain[-1], "jump"), "jump host cycle: " + " -> ".join(cycle))
                    break
                chain.append(jump)

    def check_restore_target(self, name: str, b: Backup) -> None:
        into = b.restore_test.into if b.restore_test else None
        source = getattr(b, "path", None) or getattr(b, "repository", None)
        if not into or not into.startswith("/"):
            return
        if problem := restore_into_problem(into, source):
            self.problem(("backups", name, "restore_test", "into"), problem)

    def local_path(self, value: str) -> str:
        expanded = Path(os.path.expanduser(value))
        return str(expanded if expanded.is_absolute() else self.base / expanded)

    def ssh(
        self,
        d: SSHSpec,
        h: SSHSpec,
        entry: ConfigEntry | None = None,
        origins: dict[str, str] | None = None,
        host_label: str = "host",
    ) -> SSHSettings:
        """Host keys <- defaults.ssh <- the ssh config's ``entry`` <- built-in; ``origins`` gets where each
        connection value came from."""
        from_config = (
            {}
            if entry is None
            else {
                "user": entry.user,
                "port": entry.port,
                "identity_file": entry.identity_file,
                "known_hosts": entry.known_hosts,
                "connect_timeout": entry.connect_timeout,
            }
        )
        config_label = f"ssh config {self.client_config.path}" if self.client_config else "ssh config"

        def pick(key: str) -> Any:
            for value, origin in (
                (getattr(h, key), host_label),
                (getattr(d, key), "defaults.ssh"),
                (from_config.get(key), config_label),
                (BUILTIN_SSH.get(key), "built-in"),
            ):
                if value is not None:
                    if origins is not None and key in _ORIGIN_KEYS:
                        origins[key] = origin
                    return value
            return None

        secret = h if h.password_env or h.password_file else d
        connect, identity = float(pick("connect_timeout")), pick("identity_file")
        settings = SSHSettings(
            user=pick("user"),
            port=pick("port"),
            identity_file=self.local_path(identity) if identity else None,
            known_hosts=tuple(self.local_path(k) for k in pick("known_hosts")),
            connect_timeout=connect,
            banner_timeout=float(pick("banner_timeout") or connect),
            auth_timeout=float(pick("auth_timeout") or connect),
            command_timeout=float(pick("command_timeout")),
            sudo=bool(pick("sudo")),
            max_probe_output=int(pick("max_probe_output")),
            password_env=secret.password_env,
            password_file=self.local_path(secret.password_file) if secret.password_file else None,
        )
        return self._settings.setdefault(settings, settings)

    def resolve(
        self,
        defaults: DefaultsSpec,
        sites: dict[str, Site],
        groups: dict[str, GroupSpec],
        hosts: dict[str, HostSpec],
    ) -> dict[str, Host]:
        parents: dict[str, set[str]] = {g: set() for g in groups}
        for name, g in groups.items():
            for child in g.children:
                parents[child].add(name)
        depth = depth_order(parents)

        cache: dict[frozenset[str], tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]]] = {}

        def membership(direct: frozenset[str]) -> tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]]:
            """All groups incl. ancestors, their merged vars and check patterns (shared by hosts)."""
            if direct not in cache:
                found, todo = set(direct), list(direct)
                while todo:
                    for parent in parents[todo.pop()] - found:
                        found.add(parent)
                        todo.append(parent)
                group_vars: dict[str, Any] = {}
                for group in sorted(found, key=lambda g: (depth[g], g)):
                    group_vars.update(groups[group].vars)
                checks = tuple(sorted({c for g in found for c in groups[g].checks}))
                cache[direct] = (tuple(sorted(found)), group_vars, checks)
            return cache[direct]

        direct: dict[str, set[str]] = {name: set(spec.groups) for name, spec in hosts.items()}
        for name, g in groups.items():
            for member in g.hosts:
                direct[member].add(name)
        result: dict[str, Host] = {}
        for name, spec in hosts.items():
            member_of, group_vars, checks = membership(frozenset(direct[name]))
            site_vars = sites[spec.site].vars if spec.site else {}
            merged = {**defaults.vars, **site_vars, **group_vars, **spec.vars}
            try:
                host = self.reach(name, spec, defaults.ssh, hosts, f"hosts.{name}")
            except SSHConfigProblem as exc:
                self.problem(("hosts", name), str(exc))
                continue
            result[name] = replace(
                host,
                site=spec.site,
                groups=member_of,
                tags=tuple(spec.tags),
                vars=MappingProxyType(merged),
                checks=checks,
                line=self.lines.nearest(("hosts", name)),
                description=spec.description,
            )
        for name, host in result.items():
            if chain_length(host, result) > 8:
                self.problem(
                    ("hosts", name),
                    f"jump host chain of {name} (jump / ssh config ProxyJump) is a cycle or longer than 8 hops",
                )
        return result

    def reach(
        self, name: str, spec: HostSpec, d: SSHSpec, hosts: Mapping[str, HostSpec], label: str, depth: int = 0
    ) -> Host:
        """How to reach ``name``: address, SSH settings and jump chain, through the ssh config as
        ``ssh NAME`` would, the inventory's values winning."""
        if depth > 8:
            raise SSHConfigProblem("ProxyJump chain longer than 8 hops in the ssh config (a cycle?)")
        entry = self.client_config.lookup(name) if self.client_config else None
        config_label = f"ssh config {self.client_config.path}" if self.client_config else ""
        origins: dict[str, str] = {}
        settings = self.ssh(d, spec, entry, origins, label)
        if spec.address:
            address, origins["address"] = spec.address, label
        elif entry is not None and entry.hostname:
            address, origins["address"] = entry.hostname, config_label
        else:
            address, origins["address"] = name, "host name"
        jump, via = spec.jump, None
        if jump:
            origins["jump"] = label
        elif entry is not None and entry.proxy_jump:
            jump, via = self.hops(parse_jump(entry.proxy_jump), d, hosts, depth)
            origins["jump"] = config_label
        return Host(
            name=name,
            address=address,
            ssh=settings,
            site=None,
            groups=(),
            tags=(),
            jump=jump,
            vars=MappingProxyType({}),
            checks=(),
            line=0,
            via=via,
            origins=MappingProxyType(origins),
        )

    def hops(
        self, chain: Sequence[Hop], d: SSHSpec, hosts: Mapping[str, HostSpec], depth: int
    ) -> tuple[str | None, Host | None]:
        """The last hop of a ProxyJump chain (the one in front of the host): an inventory host by name
        (``jump``), or a jump host resolved through the ssh config (``via``) reached through the hops
        before it."""
        last, before = chain[-1], chain[:-1]
        if not before and last.user is None and last.port is None and last.host in hosts:
            return last.host, None
        hop = self.reach(last.host, HostSpec(user=last.user, port=last.port), d, hosts, "ProxyJump", depth + 1)
        if before:
            jump, via = self.hops(before, d, hosts, depth + 1)
            hop = replace(hop, jump=jump, via=via)
        return None, hop

    def groups(self, groups: dict[str, GroupSpec], hosts: dict[str, Host]) -> dict[str, Group]:
        members: dict[str, list[str]] = {n: [] for n in groups}
        for host in hosts.values():
            for group in host.groups:
                members[group].append(host.name)
        return {
            n: Group(
                name=n,
                hosts=tuple(members[n]),
                children=tuple(g.children),
                vars=MappingProxyType(dict(g.vars)),
                checks=tuple(g.checks),
                line=self.lines.nearest(("groups", n)),
                description=g.description,
            )
            for n, g in groups.items()
        }
