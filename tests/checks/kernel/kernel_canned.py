"""Canned /proc/sys probe output for the kernel pack tests."""

from __future__ import annotations

from helpers import make_facts

from itops.checklib.sysctl import ABSENT, proc_sys_path

PROC_SYS = "proc_sys"

#: a CIS-hardened host
HARDENED = {
    "kernel.randomize_va_space": "2",
    "kernel.yama.ptrace_scope": "1",
    "kernel.dmesg_restrict": "1",
    "fs.suid_dumpable": "0",
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.icmp_ignore_bogus_error_responses": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.secure_redirects": "0",
    "net.ipv4.conf.default.secure_redirects": "0",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.conf.default.log_martians": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv6.conf.all.disable_ipv6": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv6.conf.default.accept_source_route": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
}
NO_IPV6 = {k: ABSENT for k in HARDENED if k.startswith("net.ipv6.")}


def proc_sys(overrides: dict[str, str | None] | None = None) -> str:
    """Probe output: the hardened baseline with some keys changed (None drops the line)."""
    values = {**HARDENED, **(overrides or {})}
    return "".join(f"{proc_sys_path(k)}={v}\n" for k, v in values.items() if v is not None)


def facts(text: str | None = None, rc: int = 0, **kw):
    return make_facts({PROC_SYS: (rc, proc_sys() if text is None else text)}, **kw)
