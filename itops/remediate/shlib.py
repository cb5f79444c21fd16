"""The POSIX sh functions every generated remediation script carries (and every applied fix runs with).

Each function is idempotent and prints one line per thing it looked at: ``changed: ...`` when it
changed something, ``ok: ...`` when it was already right; errors go to stderr with a non-zero
return. Values arrive as positional parameters (the script quotes them with shlex.quote), never
spliced into code; awk reads them from the environment (``-v`` would interpret backslashes).
"""

from __future__ import annotations

__all__ = ["SHLIB", "SSHD_RELOAD"]

SSHD_RELOAD = r"""# itops_sshd_reload: a RUNNING sshd re-reads its configuration; one that is not running is left
# stopped (never started: a chroot, a container, a socket-activated or deliberately stopped sshd).
# systemd: only an active ssh/sshd unit is reloaded. Otherwise SIGHUP goes to the PID in
# /run/sshd.pid only when that process is an sshd: a stale pidfile never signals another process.
itops_sshd_reload() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for _u in ssh sshd; do
      systemctl is-active --quiet "$_u" 2>/dev/null || continue
      if systemctl reload "$_u"; then echo "reloaded: sshd ($_u.service)"; return 0; fi
      echo "error: systemctl reload $_u failed; the new setting applies when sshd next starts" >&2; return 1
    done
  fi
  _p=$(cat /run/sshd.pid 2>/dev/null) || _p=
  case $_p in
    '' | *[!0-9]*) ;;
    *) if [ "$(cat "/proc/$_p/comm" 2>/dev/null)" = sshd ] && kill -HUP "$_p" 2>/dev/null; then
         echo "reloaded: sshd (SIGHUP to PID $_p)"; return 0
       fi ;;
  esac
  echo "note: no running sshd to reload here; the new setting applies when sshd next starts"
}
"""

SHLIB = (
    r"""umask 022
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# _itops_rewrite FILE KEY LINE WHERE ICASE: FILE's text on stdout with KEY set once as LINE.
# WHERE=top: LINE kept (or put) before any Match line; inplace: the first setting becomes LINE
# (appended when none); none: every setting commented out. Other settings are commented out.
_itops_rewrite() {
  ITOPS_K=$2 ITOPS_L=$3 ITOPS_W=$4 ITOPS_I=$5 awk '
    function k(s,  t) { t = s; sub(/^[ \t]+/, "", t); sub(/[ \t=].*$/, "", t); return ic ? tolower(t) : t }
    BEGIN { key = ENVIRON["ITOPS_K"]; want = ENVIRON["ITOPS_L"]; where = ENVIRON["ITOPS_W"]
            ic = ENVIRON["ITOPS_I"] == "1"; if (ic) key = tolower(key) }
    NR == FNR { if ($0 ~ /^[ \t]*#/) next
                if (tolower(k($0)) == "match") m = 1
                if (!m && !found && k($0) == key && $0 == want) found = 1
                next }
    FNR == 1 && where == "top" && !found { print want; done = 1 }
    /^[ \t]*#/ { print; next }
    { if (tolower(k($0)) == "match") m2 = 1 }
    k($0) == key {
      if (where == "top" && found && !done && !m2 && $0 == want) { print; done = 1; next }
      if (where == "inplace" && !done) { print want; done = 1; next }
      print "# itops: " $0; next }
    { print }
    END { if (!done && (where == "inplace" || (where == "top" && !found))) print want }
  ' "$1" "$1"
}

# _itops_put FILE NEW: FILE's content replaced by NEW's (mode and owner kept); 0 when it changed
_itops_put() {
  if cmp -s "$2" "$1"; then rm -f "$2"; return 1; fi
  cat "$2" > "$1" && rm -f "$2" && return 0
  rm -f "$2"; echo "error: could not write $1" >&2; return 2
}

# itops_set_line FILE KEY SEP VALUE [ICASE]: KEY<SEP>VALUE set once in a "key value" file
itops_set_line() {
  if [ -L "$1" ]; then echo "error: $1 is a symbolic link; not following it" >&2; return 1; fi
  if [ ! -e "$1" ]; then mkdir -p "$(dirname "$1")" && : > "$1" || return 1; fi
  _t=$(mktemp) || return 1
  _itops_rewrite "$1" "$2" "$2$3$4" inplace "${5:-0}" > "$_t" || { rm -f "$_t"; return 1; }
  _itops_put "$1" "$_t"
  case $? in 0) echo "changed: $1: $2$3$4" ;; 1) echo "ok: $1: $2$3$4" ;; *) return 1 ;; esac
}

"""
    + SSHD_RELOAD
    + r"""
# itops_sshd_set KEYWORD VALUE: set once at the top of sshd_config, every other setting (drop-ins,
# Match blocks) commented out; `sshd -t` must accept the result, else every file is put back
itops_sshd_set() {
  _main=/etc/ssh/sshd_config
  if [ ! -f "$_main" ] || [ -L "$_main" ]; then echo "error: $_main is not a regular file" >&2; return 1; fi
  _bk=$(mktemp -d) || return 1
  _changed=0; _i=0
  for _f in "$_main" /etc/ssh/sshd_config.d/*.conf; do
    [ -f "$_f" ] || continue
    _i=$((_i + 1))
    cp -p "$_f" "$_bk/$_i" || { rm -rf "$_bk"; return 1; }
    if [ "$_f" = "$_main" ]; then _w=top; else _w=none; fi
    _itops_rewrite "$_f" "$1" "$1 $2" "$_w" 1 > "$_bk/new" || { rm -rf "$_bk"; return 1; }
    _itops_put "$_f" "$_bk/new"
    case $? in 0) _changed=1 ;; 1) ;; *) _changed=1; break ;; esac
  done
  if [ "$_changed" = 0 ]; then rm -rf "$_bk"; echo "ok: sshd $1 $2"; return 0; fi
  if _out=$(sshd -t 2>&1); then
    rm -rf "$_bk"; echo "changed: sshd $1 $2 (sshd -t accepts it)"; itops_sshd_reload; return 0
  fi
  _i=0
  for _f in "$_main" /etc/ssh/sshd_config.d/*.conf; do
    [ -f "$_f" ] || continue
    _i=$((_i + 1))
    [ -f "$_bk/$_i" ] && cat "$_bk/$_i" > "$_f"
  done
  rm -rf "$_bk"
  echo "error: sshd -t refused the configuration with $1 $2; the previous files are back: $_out" >&2
  return 1
}

# itops_file PATH MAXMODE OWNER GROUP: bits beyond MAXMODE removed (none added), owner/group set;
# an empty argument leaves that part alone; a missing file is fine; symbolic links are refused
itops_file() {
  if [ -L "$1" ]; then echo "error: $1 is a symbolic link; not following it" >&2; return 1; fi
  if [ ! -e "$1" ]; then echo "ok: $1 does not exist"; return 0; fi
  _c=""
  if [ -n "$3$4" ]; then
    _cur=$(stat -c '%U:%G' -- "$1") || return 1
    _o=${3:-${_cur%%:*}}; _g=${4:-${_cur#*:}}
    if [ "$_cur" != "$_o:$_g" ]; then chown "$_o:$_g" -- "$1" || return 1; _c="owner $_o:$_g"; fi
  fi
  if [ -n "$2" ]; then
    _m=$(stat -c '%a' -- "$1") || return 1
    _n=$(printf '%o' $(( 0$_m & 0$2 )))
    if [ "$_n" != "$_m" ]; then chmod "$_n" -- "$1" || return 1; _c="${_c:+$_c, }mode $_m -> $_n"; fi
  fi
  if [ -n "$_c" ]; then echo "changed: $1: $_c"; else echo "ok: $1"; fi
}

# itops_mode PATH +BITS|-BITS: octal permission bits added or removed; symbolic links refused
itops_mode() {
  if [ -L "$1" ]; then echo "error: $1 is a symbolic link; not following it" >&2; return 1; fi
  if [ ! -e "$1" ]; then echo "ok: $1 does not exist"; return 0; fi
  _m=$(stat -c '%a' -- "$1") || return 1
  case $2 in
    +[0-7]*) _n=$(printf '%o' $(( 0$_m | 0${2#+} ))) ;;
    -[0-7]*) _n=$(printf '%o' $(( 0$_m & ~0${2#-} ))) ;;
    *) echo "error: bad mode change $2" >&2; return 1 ;;
  esac
  if [ "$_n" = "$_m" ]; then echo "ok: $1: mode $_m"; return 0; fi
  chmod "$_n" -- "$1" || return 1
  echo "changed: $1: mode $_m -> $_n"
}

# itops_sysctl NAME VALUE: persistent in /etc/sysctl.d/99-zz-itops.conf (read last; other settings
# of NAME under /etc commented out) and at runtime
itops_sysctl() {
  _conf=/etc/sysctl.d/99-zz-itops.conf
  mkdir -p /etc/sysctl.d || return 1
  for _f in /etc/sysctl.conf /etc/sysctl.d/*.conf; do
    [ -f "$_f" ] && [ ! -L "$_f" ] && [ "$_f" != "$_conf" ] || continue
    _t=$(mktemp) || return 1
    _itops_rewrite "$_f" "$1" "" none 0 > "$_t" || { rm -f "$_t"; return 1; }
    if _itops_put "$_f" "$_t"; then echo "changed: $_f: other setting of $1 commented out"; fi
  done
  itops_set_line "$_conf" "$1" " = " "$2" || return 1
  _now=$(sysctl -n "$1" 2>/dev/null | tr -s ' \t' '  ')
  if [ "$_now" = "$2" ]; then echo "ok: running kernel: $1 = $2"; return 0; fi
  sysctl -q -w "$1=$2" >/dev/null || { echo "error: sysctl -w $1=$2 failed" >&2; return 1; }
  echo "changed: running kernel: $1 = $2"
}

# itops_module_disable NAME: modprobe refuses to load it (install NAME /bin/false), unloaded when loaded
itops_module_disable() {
  _f=/etc/modprobe.d/itops-$1.conf
  mkdir -p /etc/modprobe.d || return 1
  [ -e "$_f" ] || : > "$_f" || return 1
  _t=$(mktemp) || return 1
  printf 'install %s /bin/false\nblacklist %s\n' "$1" "$1" > "$_t"
  _itops_put "$_f" "$_t"
  case $? in 0) echo "changed: $_f" ;; 1) echo "ok: $_f" ;; *) return 1 ;; esac
  _k=$(printf '%s' "$1" | tr - _)
  if [ -r /proc/modules ] && grep -q "^$_k " /proc/modules; then
    modprobe -r "$1" || { echo "error: $1 is loaded and could not be unloaded" >&2; return 1; }
    echo "changed: module $1 unloaded"
  fi
}

# itops_chage ACCOUNT min|warn DAYS: one account's password aging field set in /etc/shadow (via chage)
itops_chage() {
  case $1 in -*|"") echo "error: not an account name: $1" >&2; return 1 ;; esac
  case $2 in min) _col=4; _opt=--mindays ;; warn) _col=6; _opt=--warndays ;; *) return 1 ;; esac
  _cur=$(ITOPS_U=$1 awk -F: -v c="$_col" '$1 == ENVIRON["ITOPS_U"] { print $c }' /etc/shadow) || return 1
  if [ "$_cur" = "$3" ]; then echo "ok: $1: password $2 days $3"; return 0; fi
  chage "$_opt" "$3" "$1" || return 1
  echo "changed: $1: password $2 days ${_cur:-unset} -> $3"
}

# itops_package_absent NAME: removed with the host's package manager when installed
itops_package_absent() {
  if command -v dpkg-query >/dev/null 2>&1; then
    if dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q ' installed$'; then
      DEBIAN_FRONTEND=noninteractive apt-get remove -y -q "$1" >/dev/null || dpkg --remove "$1" >/dev/null || return 1
      echo "changed: package $1 removed"; return 0
    fi
  elif command -v rpm >/dev/null 2>&1; then
    if rpm -q --quiet "$1"; then
      { dnf -y -q remove "$1" || yum -y -q remove "$1" || zypper -n -q rm "$1"; } >/dev/null || return 1
      echo "changed: package $1 removed"; return 0
    fi
  elif command -v apk >/dev/null 2>&1; then
    if apk info -e "$1" >/dev/null 2>&1; then
      apk del -q "$1" || return 1; echo "changed: package $1 removed"; return 0
    fi
  else
    echo "error: no package manager known here (dpkg, rpm, apk)" >&2; return 1
  fi
  echo "ok: package $1 is not installed"
}
"""
)
