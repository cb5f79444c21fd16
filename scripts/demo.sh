#!/usr/bin/env bash
# The demo of the README: start a local lab of real sshd hosts (a hardened and a weak Debian
# root, each behind its own sshd on 127.0.0.1), audit it, print the summary, stop the lab.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ITOPS=${ITOPS:-.venv/bin/itops}
LAB=${LAB:-.lab}
export ITOPS_HOME=${ITOPS_HOME:-$PWD/$LAB/store}

"$PY" -m itops_lab down --dir "$LAB" >/dev/null 2>&1 || true
echo "==> starting the lab (4 sshd hosts on 127.0.0.1; the first run builds a cached Debian root)" >&2
inv=$("$PY" -m itops_lab up --dir "$LAB" --hosts 4 --roots --backups --detach) || exit 1
trap '"$PY" -m itops_lab down --dir "$LAB" >/dev/null 2>&1' EXIT

echo "==> itops inventory validate $inv" >&2
"$ITOPS" inventory validate "$inv" || exit 1
echo "==> itops audit -i $inv --report html:$LAB/report.html" >&2
"$ITOPS" audit -i "$inv" --report "html:$LAB/report.html"
code=$?
echo "==> audit exit code: $code (1 = failures found, as planted on the weak hosts)" >&2

echo "==> itops backup verify -i $inv --restore-test --prom-file $LAB/backups.prom" >&2
"$ITOPS" backup verify -i "$inv" --restore-test --prom-file "$LAB/backups.prom"
bcode=$?
echo "==> backup verify exit code: $bcode (1 = the planted stale/corrupt/shrunk backups were found)" >&2

"$ITOPS" runs list --limit 5
echo "==> HTML report: $LAB/report.html   metrics: $LAB/backups.prom" >&2
# the weak hosts and the planted backup faults are meant to fail: the demo succeeds when both
# runs completed (exit 0 or 1), not when they found nothing
{ [ "$code" -eq 0 ] || [ "$code" -eq 1 ]; } && { [ "$bcode" -eq 0 ] || [ "$bcode" -eq 1 ]; }
