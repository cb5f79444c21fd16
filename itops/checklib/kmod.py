"""Whether a kernel module can be loaded: one probe per module and one pure judge (CIS 1.1.1.x).

The probe prints tagged lines, so a truncated or foreign output is recognisable::

    @module udf
    @loaded udf 118784 0 - Live 0x0      the module's /proc/modules line (loaded right now)
    @listed /proc/filesystems            evidence the code is in the running kernel
    @unreadable /proc/modules            a source that exists but could not be read
    @release 6.1.0-18-amd64
    @modprobe-rc 0                       kmod present: what ``modprobe -n -v MOD`` would do,
    |install /bin/false                  its output lines behind "|"
    @no-modprobe                         kmod absent: the module file and install rule instead
    @module-file none
    @install-rule none
    @end

Verdicts, first match wins: loaded now → FAIL; built into the running kernel (listed in
/proc/filesystems, /sys/module or modules.builtin without being loaded as a module) → FAIL,
as no modprobe.d rule can disable built-in code; with modprobe: ``install /bin/false`` (or
/bin/true) or "Module ... not found" → PASS, ``insmod`` or any other install command → FAIL;
without modprobe: no module file for the running kernel → PASS (nothing on the system can
load it), a module file guarded by an ``install ... /bin/false|/bin/true`` rule → PASS, else
FAIL. Anything else (probe failed, timed out, output not recognised) → ERROR, never PASS.

A missing /proc/modules while /proc/filesystems reads fine means a kernel without loadable
module support: nothing is loaded, and the modprobe.d policy is still judged (conservatively).
Without /sys (a chroot) a built-in non-file-system module such as usb-storage is detected only
through the kernel's modules.builtin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from itops.checkapi import Facts, Probe, ProbeResult, quote
from itops.model import Finding

__all__ = [
    "MODPROBE_D_GLOBS",
    "KernelModule",
    "ModuleState",
    "judge_module",
    "module_probe",
    "module_probe_command",
    "parse_module_probe",
]

#: modprobe.d files kmod reads, in the order the probe concatenates them when kmod is absent.
MODPROBE_D_GLOBS = (
    "/etc/modprobe.d/*.conf",
    "/run/modprobe.d/*.conf",
    "/usr/local/lib/modprobe.d/*.conf",
    "/lib/modprobe.d/*.conf",
    "/usr/lib/modprobe.d/*.conf",
)

# CIS's own audit accepts /usr/bin/false too (usr-merged systems); both make loading a no-op.
_DISABLING_INSTALL = re.compile(r"^(/usr)?/bin/(false|true)$")


@dataclass(frozen=True)
class KernelModule:
    """A kernel module as modprobe names it (``usb-storage``), and its file system type if it has one."""

    name: str
    fs_type: str = ""  # what it registers in /proc/filesystems: "vxfs" for freevxfs, "" for drivers

    @property
    def kernel_name(self) -> str:
        """The name in /proc/modules and /sys/module (the kernel spells "-" as "_")."""
        return self.name.replace("-", "_")


def module_probe_command(module: KernelModule) -> str:
    """The POSIX sh probe for ``module`` (see the module docstring for its output)."""
    m, u, fs = quote(module.name), quote(module.kernel_name), quote(module.fs_type)
    rules = " ".join(MODPROBE_D_GLOBS)
    return f"""m={m}; u={u}; fs={fs}
echo "@module $m"
if [ -r /proc/modules ]; then
  l=$(awk -v u="$u" '$1 == u' /proc/modules)
  if [ -n "$l" ]; then echo "@loaded $l"; fi
elif [ -e /proc/modules ]; then echo '@unreadable /proc/modules'
fi
if [ ! -r /proc/filesystems ]; then echo '@unreadable /proc/filesystems'
elif [ -n "$fs" ] && awk -v f="$fs" '$NF == f {{ x = 1 }} END {{ exit !x }}' /proc/filesystems; then
  echo '@listed /proc/filesystems'
fi
if [ -d "/sys/module/$u" ]; then echo "@listed /sys/module/$u"; fi
k=$(uname -r)
echo "@release $k"
for d in "/lib/modules/$k" "/usr/lib/modules/$k"; do
  if [ -r "$d/modules.builtin" ] && awk -v m="$m.ko" -v u="$u.ko" \\
      '{{ n = $0; sub(/.*\\//, "", n); if (n == m || n == u) x = 1 }} END {{ exit !x }}' "$d/modules.builtin"; then
    echo "@listed $d/modules.builtin"
  fi
done
if command -v modprobe >/dev/null 2>&1; then
  o=$(modprobe -n -v "$m" 2>&1)
  echo "@modprobe-rc $?"
  printf '%s\\n' "$o" | sed 's/^/|/'
else
  echo '@no-modprobe'
  f=$(find "/lib/modules/$k" "/usr/lib/modules/$k" \\( -name "$m.ko*" -o -name "$u.ko*" \\) 2>/dev/null | head -n 1)
  echo "@module-file ${{f:-none}}"
  r=$(cat {rules} 2>/dev/null | awk -v u="$u" \\
    '$1 == "install" {{ n = $2; gsub(/-/, "_", n); if (n == u) {{ $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }} }}')
  echo "@install-rule ${{r:-none}}"
fi
echo '@end'
"""


def module_probe(module: KernelModule) -> Probe:
    """The probe of one module; its name is unique per module, so hosts run it once."""
    return Probe(f"kmod_{module.kernel_name}", module_probe_command(module), timeout=30)


@dataclass(frozen=True)
class ModuleState:
    """What the probe reported, tag by tag."""

    module: str = ""
    loaded: str = ""  # the /proc/modules line, "" when not loaded
    listed: tuple[str, ...] = ()  # where the running kernel shows it (built in, or loaded)
    unreadable: tuple[str, ...] = ()
    release: str = ""
    has_modprobe: bool | None = None  # None: neither "@modprobe-rc" nor "@no-modprobe" seen
    modprobe_rc: int | None = None
    modprobe_lines: tuple[str, ...] = ()
    module_file: str = ""  # "none" when the kernel tree has no file for it
    install_rule: str = ""  # "none" when modprobe.d has no install rule for it
    complete: bool = False  # "@end" seen
    unknown: tuple[str, ...] = field(default=())


def parse_module_probe(text: str) -> ModuleState:
    """Parse the probe's tagged output; unknown lines are kept so the judge can refuse them."""
    values: dict[str, str] = {}
    listed: list[str] = []
    unreadable: list[str] = []
    modprobe_lines: list[str] = []
    unknown: list[str] = []
    complete = False
    has_modprobe: bool | None = None
    modprobe_rc: int | None = None
    for line in text.splitlines():
        if line.startswith("|"):
            if line[1:].strip():
                modprobe_lines.append(line[1:].strip())
            continue
        tag, _, rest = line.partition(" ")
        if tag == "@end":
            complete = True
        elif tag == "@no-modprobe":
            has_modprobe = False
        elif tag == "@modprobe-rc" and rest.strip().isdigit():
            has_modprobe, modprobe_rc = True, int(rest)
        elif tag == "@listed":
            listed.append(rest.strip())
        elif tag == "@unreadable":
            unreadable.append(rest.strip())
        elif tag in ("@module", "@loaded", "@release", "@module-file", "@install-rule"):
            values[tag] = rest.strip()
        elif line.strip():
            unknown.append(line)
    return ModuleState(
        module=values.get("@module", ""),
        loaded=values.get("@loaded", ""),
        listed=tuple(listed),
        unreadable=tuple(unreadable),
        release=values.get("@release", ""),
        has_modprobe=has_modprobe,
        modprobe_rc=modprobe_rc,
        modprobe_lines=tuple(modprobe_lines),
        module_file=values.get("@module-file", ""),
        install_rule=values.get("@install-rule", ""),
        complete=complete,
        unknown=tuple(unknown),
    )


def judge_module(module: KernelModule, facts: Facts) -> Finding:
    """The verdict for ``module`` from its probe in ``facts`` (see the module docstring)."""
    probe = module_probe(module)
    result = facts.get(probe.name)
    if result is None:
        return Finding.error(f"could not assess {module.name}: its probe did not run")
    return judge_module_result(module, result)


def judge_module_result(module: KernelModule, result: ProbeResult) -> Finding:
    """The verdict for ``module`` from its probe's result."""
    name = module.name
    if not result.ok:
        return Finding.error(f"could not assess {name}: {result.problem()}")
    s = parse_module_probe(result.text)
    if not s.complete or s.module != name or s.unknown or s.has_modprobe is None or not s.release:
        first = (s.unknown or result.text.strip().splitlines() or ["no output"])[0][:200]
        return Finding.error(f"could not assess {name}: unrecognised probe output ({first})")
    if s.loaded:
        return Finding.failed(
            f"{name} is loaded in the running kernel", observed=f"/proc/modules: {s.loaded}", expected="not loaded"
        )
    if s.unreadable:
        return Finding.error(f"could not assess {name}: {', '.join(s.unreadable)} could not be read")
    if s.listed:
        return Finding.failed(
            f"{name} is built into the running kernel {s.release} ({', '.join(s.listed)}): "
            "no modprobe.d rule can disable it; only a kernel built without it can",
            observed=f"built in: {', '.join(s.listed)}",
            expected="not built in",
        )
    return _judge_modprobe(name, s) if s.has_modprobe else _judge_module_tree(name, s)


def _judge_modprobe(name: str, s: ModuleState) -> Finding:
    observed = "modprobe -n -v: " + ("; ".join(s.modprobe_lines) or "(no output)")
    names = f"({re.escape(name)}|{re.escape(name.replace('-', '_'))})"  # modprobe takes either spelling
    not_found = re.compile(rf"^modprobe: FATAL: Module {names} not found")
    if any(not_found.match(line) for line in s.modprobe_lines):
        return Finding.passed(f"no {name} module for kernel {s.release}: modprobe cannot load it", observed=observed)
    # only the insmod of the module itself decides (a dependency's insmod line does not)
    own = re.compile(rf"^insmod \S*/{names}\.ko(\.\w+)?\b")
    if any(own.match(line) for line in s.modprobe_lines):
        return Finding.failed(
            f"modprobe would load {name} (no modprobe.d install rule to /bin/false)",
            observed=observed,
            expected=f"install {name} /bin/false",
        )
    installs = [line.partition(" ")[2].strip() for line in s.modprobe_lines if line.startswith("install ")]
    if installs and s.modprobe_rc == 0:
        if _DISABLING_INSTALL.match(installs[0]):
            return Finding.passed(f"loading {name} is disabled (install {installs[0]})", observed=observed)
        return Finding.failed(
            f"modprobe {name} runs `{installs[0]}` instead of refusing",
            observed=observed,
            expected=f"install {name} /bin/false",
        )
    return Finding.error(f"could not assess {name}: unrecognised modprobe output", observed=observed)


def _judge_module_tree(name: str, s: ModuleState) -> Finding:
    observed = f"module file: {s.module_file or '?'}; install rule: {s.install_rule or '?'} (modprobe not installed)"
    if not s.module_file or not s.install_rule:
        return Finding.error(f"could not assess {name}: unrecognised probe output", observed=observed)
    if s.module_file == "none":
        return Finding.passed(
            f"no {name} module for the running kernel {s.release} (and modprobe is not installed): "
            "nothing on this system can load it",
            observed=observed,
        )
    if _DISABLING_INSTALL.match(s.install_rule):
        return Finding.passed(f"loading {name} is disabled (install {name} {s.install_rule})", observed=observed)
    what = "no modprobe.d install rule" if s.install_rule == "none" else f"its install rule runs `{s.install_rule}`"
    return Finding.failed(
        f"{name} module present ({s.module_file}) and {what}", observed=observed, expected=f"install {name} /bin/false"
    )
