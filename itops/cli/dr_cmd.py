"""``itops dr``: DR playbooks run as timed drills (``drill``), their history, and the readiness check."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from itops.cli.output import RUN_FORMATS, result_stream, shown
from itops.cli.params import inventory_param, tofu_option
from itops.cli.runs_cmd import store_option
from itops.exitcodes import ExitStatus
from itops.redact import redact


@click.group()
def dr() -> None:
    """Disaster recovery: drill playbooks, drill history, DR readiness."""


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=what)
        out[key.strip()] = value
    return out


@dr.command("drill")
@click.argument("playbook_path", metavar="PLAYBOOK", type=click.Path(dir_okay=False, path_type=Path))
@inventory_param(
    required=False, help="Inventory with the hosts and backups the steps name (needed unless every step is local)."
)
@click.option("--dry-run", is_flag=True, help="Print the plan with resolved hosts and commands; run nothing.")
@click.option("--yes", is_flag=True, help="Answer yes to every manual step (an unattended drill).")
@click.option("--answer", "answers", multiple=True, metavar="STEP=ANSWER", help="Recorded answer of a manual step.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Override a playbook var.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RUN_FORMATS),
    default="table",
    show_default=True,
    help="table at the end; json / jsonl stream each step's result as it is recorded.",
)
@tofu_option
@click.option(
    "--prom-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write node_exporter textfile metrics of the drills (achieved RTO, last success) to FILE.",
)
@store_option
def drill(
    playbook_path: Path,
    inventory_path: Path | None,
    dry_run: bool,
    yes: bool,
    answers: tuple[str, ...],
    variables: tuple[str, ...],
    fmt: str,
    tofu_file: str | None,
    prom_file: Path | None,
    store_dir: Path | None,
) -> ExitStatus:
    """Run PLAYBOOK as a timed drill (stops at the first failed step and rolls back), recorded as a run."""
    from itops.errors import UsageError
    from itops.inventory import load_inventory
    from itops.playbook.drill import Drill, render_plan
    from itops.playbook.restore import Restorer
    from itops.playbook.schema import load_playbook
    from itops.playbook.steps import StepRunner
    from itops.store import Store

    inv = load_inventory(inventory_path) if inventory_path else None
    pb = load_playbook(playbook_path, inv, _pairs(variables, "--var"))
    needs = pb.hosts() or any(s.action == "restore" for s in pb.steps)
    if inv is None and needs:
        raise UsageError(f"playbook {pb.name} names inventory hosts or backups", hint="give the inventory with -i")
    names = {s.name for s in pb.steps} | {r.name for s in pb.steps for r in s.rollback}
    given = _pairs(answers, "--answer")
    for name in given:
        if name not in names:
            hint = f"steps: {', '.join(sorted(names))}"
            raise UsageError(f"--answer names no step of {pb.name}: {name!r}", hint=hint)
    interactive = sys.stdin.isatty() and not dry_run

    def prompt(text: str) -> str | None:
        return str(click.prompt(f"MANUAL STEP: {text}\n  answer (yes / no / a note)", default="", err=True))

    runner = StepRunner(inv, answers=given, yes=yes, prompt=prompt if interactive else None, tofu_file=tofu_file)
    if dry_run:
        click.echo(render_plan(pb, runner))
        return ExitStatus.OK
    store = Store(store_dir)
    drill_ = Drill(pb, inv, runner, store, inventory_path=inventory_path, on_step=_progress(fmt == "json"))
    if inv is not None:
        runner.restore_fn = Restorer(inv, drill_.run_id)
    outcome = drill_.run(result_stream(fmt))  # a session: SIGINT/SIGTERM roll back and mark it interrupted
    if outcome.output_closed:
        raise BrokenPipeError  # the drill was recorded; the CLI exits 141 as for any closed pipe
    if prom_file is not None:
        from itops.metrics import drill_registry, write_textfile
        from itops.playbook.drill import drill_history

        write_textfile(prom_file, drill_registry(drill_history(store, limit=1000)))
    if fmt == "table":
        click.echo(_summary(pb.name, outcome))
        click.echo(f"Stored as run {outcome.run.id} in {store.root} (exit {int(outcome.exit_code)})", err=True)
    return outcome.exit_code


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    def show(step, res) -> None:  # type: ignore[no-untyped-def]
        if quiet:
            return
        if res is None:
            click.echo(f"-> {step.label} [{step.action}] ...", err=True)
        else:
            click.echo(f"   {res.status.value} in {res.seconds:.2f}s: {shown(redact(res.message))}", err=True)

    return show


def _summary(name: str, outcome) -> str:  # type: ignore[no-untyped-def]
    from itops.playbook.drill import _dur

    meta = outcome.meta
    lines = [f"Drill of {name}: {'SUCCESS' if outcome.success else 'FAILED'}  (run {outcome.run.id})", ""]
    lines.append(f"{'STEP':<44} {'STATUS':<12} {'TIME':>8}  MESSAGE")
    for rec in [*outcome.steps, *outcome.rollbacks]:
        label = f"{rec.index} {rec.name}"[:44]
        lines.append(f"{label:<44} {rec.status:<12} {rec.seconds:>7.2f}s  {shown(redact(rec.message)[:100])}")
    lines.append("")
    achieved = meta.get("achieved_rto")
    if achieved is not None:
        verdict = "met" if achieved <= meta["rto"] else "MISSED"
        lines.append(f"Achieved RTO {_dur(achieved)} against the target {_dur(meta['rto'])}: {verdict}")
    else:
        lines.append(
            f"RTO not achieved: the drill stopped at step {meta.get('failed_step')}"
            + (f"; {len(outcome.rollbacks)} rollback step(s) ran" if outcome.rollbacks else "")
        )
    return "\n".join(lines)


@dr.command("history")
@store_option
@click.option("--playbook", default=None, help="Only this playbook (its name).")
@click.option("--limit", default=50, show_default=True, help="Newest N drills listed.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def history(store_dir: Path | None, playbook: str | None, limit: int, fmt: str) -> None:
    """Past drills, and the age of the last successful drill of each playbook."""
    from itops.playbook.drill import _dur, drill_history, last_success
    from itops.store import Store

    records = drill_history(Store(store_dir), limit=1000)
    if playbook:
        records = [r for r in records if r.playbook == playbook]
    now = time.time()
    best = last_success(records)
    names = sorted({r.playbook for r in records})
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "drills": [r.to_dict() for r in records[:limit]],
                    "last_success": {
                        n: (
                            {**best[n].to_dict(), "age": now - (best[n].finished or best[n].started)}
                            if n in best
                            else None
                        )
                        for n in names
                    },
                },
                indent=2,
            )
        )
        return
    if not records:
        click.echo("no drills recorded yet", err=True)
        return
    click.echo(f"{'RUN ID':<26} {'PLAYBOOK':<28} {'STARTED':<19} {'RESULT':<9} {'RTO (achieved/target)':<22} FAILED AT")
    for r in records[:limit]:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        result = "success" if r.success else r.state if r.state != "complete" else "failed"
        rto = f"{_dur(r.achieved_rto) if r.achieved_rto is not None else '-'} / {_dur(r.rto) if r.rto else '-'}"
        click.echo(f"{r.run_id:<26} {r.playbook[:28]:<28} {started:<19} {result:<9} {rto:<22} {r.failed_step or ''}")
    click.echo("")
    click.echo("LAST SUCCESSFUL DRILL PER PLAYBOOK")
    for n in names:
        if n in best:
            age = now - (best[n].finished or best[n].started)
            click.echo(f"  {n:<28} {_dur(age)} ago (run {best[n].run_id})")
        else:
            click.echo(f"  {n:<28} never")


@dr.command("check")
@store_option
@click.option(
    "--playbooks",
    "folder",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    envvar="ITOPS_PLAYBOOKS",
    help="Folder of your playbooks (or $ITOPS_PLAYBOOKS). Required: the shipped ones are examples.",
)
@click.option(
    "--max-age",
    default=None,
    help="Allowed age of the last successful drill, e.g. 30d (default: the playbook's max_drill_age, else 90d).",
)
@click.option("--format", "fmt", type=click.Choice(RUN_FORMATS), default="table", show_default=True)
def check(store_dir: Path | None, folder: Path | None, max_age: str | None, fmt: str) -> ExitStatus:
    """DR readiness (dr.drill_recent): FAIL for each playbook whose last successful drill is too old.

    The results are stored as a run (kind audit), so the check can be scheduled and notified."""
    from itops import __version__
    from itops.cli.output import render_summary, use_colour
    from itops.errors import UsageError
    from itops.model import Run, Severity
    from itops.playbook.drill import drill_history
    from itops.playbook.readiness import playbook_files, readiness_results
    from itops.resources import bundled_dir
    from itops.session import RunSession
    from itops.store import Store, new_run_id
    from itops.yamlload import parse_duration

    try:
        limit = parse_duration(max_age) if max_age else None
    except ValueError as exc:
        raise UsageError(f"--max-age: {exc}") from None
    if folder is None:
        # Judging the shipped examples would FAIL (or pass) forever for drills nobody runs.
        raise UsageError(
            "no playbooks to judge: dr check judges only the playbooks you give it",
            hint=f"itops dr check --playbooks DIR (or set ITOPS_PLAYBOOKS); examples to start from: "
            f"{bundled_dir('playbooks')}",
        )
    files = playbook_files(folder)
    if not files:
        raise UsageError(f"no playbooks (*.yaml) in {folder}")
    store = Store(store_dir)
    records = drill_history(store, limit=10000)
    run = Run(id=new_run_id(), kind="audit", started=time.time(), inventory=str(folder), version=__version__)
    session = RunSession(store, run, fail_on=Severity.LOW, stream=result_stream(fmt))
    with session.recording():
        session.add(readiness_results(run.id, files, records, max_age=limit))
    done = session.finish()
    if done.output_closed:
        raise BrokenPipeError
    if fmt == "table":
        click.echo(render_summary(done.run, store.iter_results(run.id), colour=use_colour(), show_pass=True))
        click.echo(f"Stored as run {run.id} in {store.root} (exit {int(done.status)})", err=True)
    return done.status
