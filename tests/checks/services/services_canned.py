"""Canned outputs of the shared service, listening-socket, package and firewall probes."""

from __future__ import annotations

from itops.checklib.services import SHARED_UNITS

SERVICES = "services"
LISTENING = "listening_sockets"
PACKAGES = "packages"
FIREWALL = "firewall_rules"


def snapshot(
    units: dict[str, tuple[str, str]] | None = None,
    *,
    systemd: bool = True,
    pid1: str = "systemd",
    container: str = "",
    procs: tuple[str, ...] = (),
    installed: tuple[str, ...] = (),
) -> str:
    """Service probe output; units not given are reported as systemd reports a unit that is not installed.

    ``installed``: units whose unit file or init script exists (the probe's ``unitfile`` lines).
    """
    lines = [f"pid1={pid1}"]
    if container:
        lines.append(f"container={container}")
    lines.append(f"systemd={'yes' if systemd else 'no'}")
    if systemd:
        states = {u: ("inactive", "") for u in SHARED_UNITS}
        states.update(units or {})
        lines += [f"unit {u} {a} {e}".rstrip() for u, (a, e) in states.items()]
    lines += [f"unitfile {u} {'yes' if u in installed else 'no'}" for u in SHARED_UNITS]
    lines += [f"proc {p}" for p in (pid1, "bash", *procs)]
    return "\n".join(lines) + "\n"


SS_HEADER = "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess"


def ss(*rows: str) -> str:
    return "@@itops-ss\n" + SS_HEADER + "\n" + "\n".join(rows) + ("\n" if rows else "")


SSHD_V4 = 'tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=800,fd=3))'
SSHD_V6 = 'tcp   LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=800,fd=4))'
RESOLVED = 'udp   UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=600,fd=13))'
NGINX = 'tcp   LISTEN 0      511    *:8080            *:*    users:(("nginx",pid=900,fd=6),("nginx",pid=901,fd=6))'
DHCP = 'udp   UNCONN 0      0      0.0.0.0%eth0:68        0.0.0.0:*    users:(("dhclient",pid=500,fd=7))'
TELNETD = 'tcp   LISTEN 0      64           0.0.0.0:23        0.0.0.0:*    users:(("inetd",pid=700,fd=5))'

PROC_NET = """@@itops-proc /proc/net/tcp
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:00000000 00000000     0        0 3 4 0 20 4 29 10 -1
@@itops-proc /proc/net/tcp6
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000
@@itops-proc /proc/net/udp
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  10: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 5 2 0 0
"""


def dpkg(*names: str, removed: tuple[str, ...] = ()) -> str:
    base = ("base-files", "bash", "coreutils", "dpkg", "libc6")
    lines = [f"{n} install ok installed" for n in (*base, *names)]
    lines += [f"{n} deinstall ok config-files" for n in removed]
    return "@@itops-pm dpkg\n" + "\n".join(lines) + "\n"


def rpm(*names: str) -> str:
    return "@@itops-pm rpm\n" + "\n".join(("bash", "glibc", "rpm", *names)) + "\n"


def firewall(
    nft: tuple[int, str] | None = None,
    iptables: tuple[int, str] | None = None,
    ip6tables: tuple[int, str] | None = None,
    ipv6: str = "0",
) -> str:
    """Firewall probe output; None means the tool is not installed."""
    out = [f"@@itops-ipv6 {ipv6}"]
    for name, tool in (("nft", nft), ("iptables", iptables), ("ip6tables", ip6tables)):
        if tool is None:
            out.append(f"@@itops-missing {name}")
        else:
            out.append(f"@@itops-tool {name} {tool[0]}")
            out.append(tool[1])
    return "\n".join(out) + "\n"


NFT_INET_DROP = """table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		tcp dport { 22, 443 } accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
"""

NFT_ACCEPT = """table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 accept
	}
}
"""

#: firewalld (nftables backend): policy accept but the input chain ends with a reject
NFT_FIREWALLD = """table inet firewalld {
	set allowed {
		type ipv4_addr
		elements = { 10.0.0.1,
				10.0.0.2 }
	}
	chain filter_INPUT {
		type filter hook input priority filter + 10; policy accept;
		ct state { established, related } accept
		iifname "lo" accept
		jump filter_INPUT_ZONES
		reject with icmpx admin-prohibited
	}
	chain filter_INPUT_ZONES {
		goto filter_IN_public
	}
}
"""

NFT_IPV4_ONLY = """table ip filter {
	chain INPUT {
		type filter hook input priority filter; policy drop;
		tcp dport 22 accept
	}
}
"""

IPT_DROP = "-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
IPT_ACCEPT = "-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
IPT_FINAL_REJECT = (
    "-P INPUT ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
)
NOT_ROOT_NFT = (
    1,
    "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted",
)
NOT_ROOT_IPT = (
    4,
    "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
)
