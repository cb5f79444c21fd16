"""The lab fleet the integration tests run against: what each host is, in one place.

``lab_fleet`` (tests/conftest.py) builds exactly these hosts, and tests assert against the
expectations here instead of repeating literals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itops.registry import load_registry
from itops_lab import HARDENED, WEAK, LabMount, RootProfile
from itops_lab.profiles import ACCOUNT_DRIFT, CLEAN, NEGLECTED, SSH_DRIFT


@dataclass(frozen=True)
class LabHostPlan:
    """One host of the test fleet: its chroot profile (None: no chroot) and what a check should see."""

    profile: RootProfile | None
    groups: tuple[str, ...]
    tags: tuple[str, ...] = ()
    sshd_config: Mapping[str, str] = field(default_factory=dict)  # keyword -> value in /etc/ssh/sshd_config
    shadow_mode: str = ""  # `stat -c '%a %U %G' /etc/shadow`
    uid0_accounts: tuple[str, ...] = ()
    empty_password_accounts: tuple[str, ...] = ()


LAB_HOSTS: dict[str, LabHostPlan] = {
    "good1": LabHostPlan(
        profile=HARDENED,
        groups=("linux", "hardened"),
        tags=("pci",),
        sshd_config=dict(HARDENED.sshd_options),
        shadow_mode="640 root shadow",
        uid0_accounts=("root",),
    ),
    "bad1": LabHostPlan(
        profile=WEAK,
        groups=("linux", "weak"),
        sshd_config=dict(WEAK.sshd_options),
        shadow_mode="644 root shadow",
        uid0_accounts=("root", "toor"),
        empty_password_accounts=("guest",),
    ),
    # no chroot: commands see this machine's own files
    "plain1": LabHostPlan(profile=None, groups=("linux",)),
}


# --------------------------------------------------------------------------- planted audit lab
# tests/checks/test_planted_lab.py audits these hosts with EVERY host check and asserts that each
# host's failing set is exactly the set planted here. Each host is a real Debian root (see
# itops_lab.roots: CLEAN and the profiles derived from it) plus the file systems mounted inside it
# (a mount is not a file of the root but the host's own mount table, so it lives here, not in the
# profile: LabHostSpec.mounts, mounted in the host's private mount namespace).

_HARDENED_OPTIONS = "nodev,nosuid,noexec,size=16m"
# CIS: /tmp and /dev/shm a tmpfs, /var/tmp its own partition (a tmpfs stands in for it in the lab)
HARDENED_TEMP_MOUNTS: tuple[LabMount, ...] = (
    LabMount("/tmp", "tmpfs", _HARDENED_OPTIONS),
    LabMount("/var/tmp", "tmpfs", _HARDENED_OPTIONS),
    LabMount("/dev/shm", "tmpfs", _HARDENED_OPTIONS),
)


@dataclass(frozen=True)
class PlantedHost:
    """One host of the planted audit lab: its root profile, the file systems mounted inside its root,
    and the check ids it must fail (and no others)."""

    profile: RootProfile
    expected_fail: frozenset[str]
    mounts: tuple[LabMount, ...] = HARDENED_TEMP_MOUNTS


AUDIT_LAB: dict[str, PlantedHost] = {
    # fully hardened: fails nothing that depends on its own files
    "clean": PlantedHost(CLEAN, frozenset()),
    "ssh-drift": PlantedHost(
        SSH_DRIFT,
        frozenset(
            {
                "ssh.ciphers_strong",  # Ciphers adds aes128-cbc
                "ssh.macs_strong",  # MACs adds hmac-sha1
                "ssh.kex_strong",  # KexAlgorithms adds diffie-hellman-group14-sha1
                "ssh.log_level_adequate",  # LogLevel QUIET
                "ssh.max_startups_limited",  # MaxStartups 100:30:200
                "ssh.client_alive_configured",  # ClientAliveCountMax 0
                "ssh.hostbased_auth_disabled",  # HostbasedAuthentication yes
                "ssh.banner_configured",  # Banner unset (default none)
                "ssh.permit_user_environment_disabled",  # set only by the sshd_config.d drop-in: yes
                "ssh.root_login_disabled",  # Match Address 192.0.2.0/24 -> PermitRootLogin yes
                "ssh.sshd_config_permissions",  # sshd_config 0644
                "ssh.host_private_keys_permissions",  # ssh_host_ed25519_key 0644
                "ssh.host_public_keys_permissions",  # ssh_host_rsa_key.pub 0664
                "files.issue_net_permissions_restricted",  # /etc/issue.net 0664
                "software.package_manager_gpgcheck_enabled",  # sources.list.d/vendor.list [trusted=yes]
                "ssh.access_restricted",  # AllowGroups dropped: every account may log in
            }
        ),
    ),
    "account-drift": PlantedHost(
        ACCOUNT_DRIFT,
        frozenset(
            {
                "accounts.uid0_only_root",  # toor has UID 0 ...
                "accounts.no_duplicate_uids",  # ... which root already has
                "accounts.root_only_gid0_account",  # toor's primary group is GID 0
                "accounts.root_only_gid0_group",  # group wheel has GID 0 ...
                "accounts.no_duplicate_gids",  # ... which group root already has
                "accounts.system_accounts_no_login_shell",  # svc (UID 998) and toor (UID 0) have a shell
                "accounts.passwd_groups_exist",  # svc's primary GID 998 has no group
                "accounts.passwords_shadowed",  # olduser's hash sits in /etc/passwd
                "accounts.shadow_no_empty_passwords",  # guest's /etc/shadow password is empty
                "accounts.shadow_group_empty",  # alice is a member of group shadow
                "accounts.password_max_days_limited",  # login.defs PASS_MAX_DAYS 99999
                "accounts.password_min_days_set",  # alice's minimum password age is 0
                "accounts.login_defs_umask_restrictive",  # login.defs UMASK 022
                "accounts.sudoers_no_nopasswd",  # sudoers.d/90-alice: NOPASSWD: ALL ...
                "accounts.sudoers_authenticate_required",  # ... and Defaults:alice !authenticate
                "accounts.home_directories_permissions",  # /home/alice 0755
                "accounts.root_path_sane",  # root's ~/.profile adds /opt/tools, owned by alice
                "files.shadow_permissions",  # /etc/shadow 0644
                "files.gshadow_backup_permissions",  # /etc/gshadow- 0644
                "accounts.password_hashing_strong",  # alice's password is an MD5-crypt hash
                "accounts.ssh_authorized_keys_protected",  # /home/guest/.ssh/authorized_keys 0664
                "accounts.user_dotfiles_safe",  # /home/guest/.rhosts
                "accounts.password_quality_enforced",  # pam_pwquality.so minlen=8 overrides pwquality.conf's 14
            }
        ),
    ),
    "neglected": PlantedHost(
        NEGLECTED,
        frozenset(
            {
                "files.crontab_permissions",  # /etc/crontab 0644
                "files.cron_dirs_permissions",  # /etc/cron.d 0755
                "files.opasswd_permissions",  # /etc/security/opasswd 0644
                "files.passwd_backup_permissions",  # /etc/passwd- 0664
                "files.suid_sgid_allowlisted",  # SUID copy of dash at /usr/local/bin/.helper
                "files.world_writable_files_absent",  # /usr/local/etc/app.conf 0666
                "files.hosts_equiv_absent",  # /etc/hosts.equiv holding "+" (trust every host)
                "files.world_writable_dirs_sticky",  # /srv/upload 0777, no sticky bit
                "files.unowned_files_absent",  # /opt/vendor/agent.bin owned by uid/gid 4242
                "logging.log_files_permissions",  # /var/log/auth.log 0644
                "logging.logrotate_configured",  # /etc/cron.daily/logrotate removed, no timer
                "logging.journald_compress_enabled",  # journald.conf Compress=no
                "software.telnet_client_absent",  # telnet installed (dpkg -i)
                "kernel.cramfs_module_disabled",  # cramfs module present, modprobe.d policy removed
                "kernel.udf_module_disabled",  # udf module present, modprobe.d policy removed
                "kernel.usb_storage_module_disabled",  # usb-storage module present, modprobe.d policy removed
                "kernel.suid_core_dumps_disabled",  # no '* hard core 0' in limits.d
                "software.os_release_supported",  # /etc/os-release says Debian 10 (buster)
                "software.rsh_client_absent",  # rsh-client in the dpkg status database
                "files.sudoers_permissions",  # /etc/sudoers.d/50-operators 0644
                "accounts.password_hashing_strong",  # login.defs ENCRYPT_METHOD MD5
                "accounts.shell_umask_restrictive",  # /etc/profile.d/umask.sh: umask 002
                "accounts.user_dotfiles_safe",  # /home/alice/.netrc 0644
                "storage.tmp_mount_options_hardened",  # /tmp tmpfs mounted without noexec
                "storage.dev_shm_mount_options_hardened",  # /dev/shm tmpfs mounted without nosuid
                "storage.var_tmp_mount_options_hardened",  # /var/tmp not a separate mount (lives on /)
            }
        ),
        mounts=(
            LabMount("/tmp", "tmpfs", "nodev,nosuid,size=16m"),
            LabMount("/dev/shm", "tmpfs", "nodev,noexec,size=16m"),
        ),
    ),
}

# Inventory vars for every planted lab host: the EOL check compares with a fixed date, so the
# clean bookworm host does not start failing on 2028-06-30.
AUDIT_LAB_VARS: dict[str, Any] = {"os_eol_today": "2027-01-01"}

# Checks whose verdict comes from the SHARED machine (kernel, network stack, process table, mount
# table), not from a host's root: every lab host sees the same thing. They are left out of the
# exact-set comparison; the test asserts instead that their verdict is identical on every host
# and never PASS when their probe could not run.
_SYSCTL = "reads the running kernel's /proc/sys, which every lab host shares"
_NO_INIT = (
    "daemon state: the lab's chroots run no init system and share this machine's process table, "
    "so the check sees the machine's own daemons (and, with no init, a daemon installed in the root "
    "but not running FAILs while one not installed is SKIPPED)"
)
_DF = (
    "df: every root is a bind mount of a directory on this machine's one disk (like a container's /), so "
    "its usage is this machine's; the hosts' own tmpfs mounts (PlantedHost.mounts) are small and nearly empty"
)
ENVIRONMENT_CHECKS: dict[str, str] = {
    "kernel.aslr_enabled": _SYSCTL,
    "kernel.bogus_icmp_responses_ignored": _SYSCTL,
    "kernel.dmesg_restricted": _SYSCTL,
    "kernel.icmp_broadcasts_ignored": _SYSCTL,
    "kernel.icmp_redirects_not_accepted": _SYSCTL,
    "kernel.icmp_redirects_not_sent": _SYSCTL,
    "kernel.ip_forwarding_disabled": _SYSCTL,
    "kernel.ipv6_router_advertisements_not_accepted": _SYSCTL,
    "kernel.martians_logged": _SYSCTL,
    "kernel.ptrace_scope_restricted": _SYSCTL,
    "kernel.rp_filter_enabled": _SYSCTL,
    "kernel.secure_redirects_not_accepted": _SYSCTL,
    "kernel.source_routing_disabled": _SYSCTL,
    "kernel.tcp_syncookies_enabled": _SYSCTL,
    "services.listening_ports_allowlisted": "listening sockets: the lab hosts share this machine's network namespace",
    "services.firewall_default_deny": (
        "netfilter rules live in the shared kernel (every root has nft installed, so the tool's "
        "presence, the part a root decides, is the same everywhere)"
    ),
    "services.time_sync_active": _NO_INIT,
    "services.cron_daemon_enabled": _NO_INIT,
    "logging.journald_persistent_or_rsyslog": _NO_INIT,
    "logging.auditd_running": _NO_INIT + " (auditd is installed in every root, so only the daemon part varies)",
    "storage.filesystem_usage_below_threshold": _DF,
    "storage.inode_usage_below_threshold": _DF,
}


def _suid_dumpable() -> str | None:
    value = Path("/proc/sys/fs/suid_dumpable").read_text().strip()
    return None if value == "0" else f"fs.suid_dumpable is {value} on this machine's kernel"


def _cramfs_loaded() -> str | None:
    modules = Path("/proc/modules")
    loaded = modules.exists() and any(line.startswith("cramfs ") for line in modules.read_text().splitlines())
    return "cramfs is loaded in this machine's kernel" if loaded else None


def _module_active(module: str, fs_type: str = "") -> Callable[[], str | None]:
    """Why ``module`` is loaded or built into this machine's kernel, as a lab host sees it.

    A chroot sees this machine's /proc (mounted by the lab) but no /sys and no modules.builtin of
    the real kernel, so /proc/modules and /proc/filesystems are what decide here.
    """

    def active() -> str | None:
        modules = Path("/proc/modules")
        kname = module.replace("-", "_")
        if modules.exists() and any(line.split()[0] == kname for line in modules.read_text().splitlines()):
            return f"{module} is loaded in this machine's kernel"
        if fs_type and fs_type in Path("/proc/filesystems").read_text().split():
            return f"{module} is built into this machine's kernel (/proc/filesystems)"
        return None

    return active


def _legacy_port_open() -> str | None:
    legacy = set(load_registry([]).get("services.legacy_services_absent").meta.params["legacy_ports"])
    open_ports = set()
    for proto, state in (("tcp", "0A"), ("udp", "07")):  # LISTEN; unconnected UDP (what ss -ul lists)
        for table in (Path(f"/proc/net/{proto}"), Path(f"/proc/net/{proto}6")):
            for line in table.read_text().splitlines()[1:] if table.exists() else []:
                fields = line.split()
                port = f"{int(fields[1].rsplit(':', 1)[1], 16)}/{proto}"
                if fields[3] == state and port in legacy:
                    open_ports.add(port)
    return f"this machine listens on legacy port(s) {', '.join(sorted(open_ports))}" if open_ports else None


# Checks that judge a host's root AND a piece of shared machine state. They stay in the exact-set
# comparison; when the machine's part fails (the function returns why), they must FAIL on EVERY
# host, the clean one included.
MACHINE_GATES: dict[str, Callable[[], str | None]] = {
    "kernel.suid_core_dumps_disabled": _suid_dumpable,  # + the hard core limit in the root's limits.d
    "kernel.cramfs_module_disabled": _cramfs_loaded,  # + modprobe.d and the module tree in the root
    "services.legacy_services_absent": _legacy_port_open,  # + the root's installed packages
    # + modprobe.d and the module tree in the root (squashfs is built into many kernels, this one's too)
    "kernel.freevxfs_module_disabled": _module_active("freevxfs", "vxfs"),
    "kernel.hfs_module_disabled": _module_active("hfs", "hfs"),
    "kernel.hfsplus_module_disabled": _module_active("hfsplus", "hfsplus"),
    "kernel.jffs2_module_disabled": _module_active("jffs2", "jffs2"),
    "kernel.squashfs_module_disabled": _module_active("squashfs", "squashfs"),
    "kernel.udf_module_disabled": _module_active("udf", "udf"),
    "kernel.usb_storage_module_disabled": _module_active("usb-storage"),
}
