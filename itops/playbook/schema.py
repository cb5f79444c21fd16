"""DR playbooks (``playbooks/*.yaml``): one schema, validated with file:line problems, templates resolved.

A playbook::

    name: pg-standby-restore
    description: Restore the newest orders dump onto the standby and prove it serves queries
    systems: [db1]
    rto: 15m              # the recovery time objective the drill is measured against
    rpo: 26h
    owner: dba-team
    max_drill_age: 90d    # dr.drill_recent fails when the last successful drill is older
    vars: {standby: db2}  # {{ standby }} in any string below; --var standby=db3 overrides
    steps:
      - name: stop writes
        run: systemctl stop app           # on an inventory host, over SSH
        host: app1
        rollback:                         # run (newest first) when a LATER step fails
          - {name: start writes again, run: systemctl start app, host: app1}
      - {name: restore, restore: {backup: pg-orders, database: orders, replace: true}}
      - name: standby answers
        check: {command: "psql -tAc 'select count(*) from orders'", host: "{{ standby }}", expect_output: "^[1-9]"}
        retries: 5
        interval: 2s
      - {name: port open, wait_for: {tcp: {host: "{{ standby }}", port: 5432}}, timeout: 60s}
      - {name: DNS switched, manual: "Point db.example.com at the standby, then confirm"}

Templates: ``{{ NAME }}`` is a playbook var (``vars`` overridden by ``--var``);
``{{ hosts.H.address }}``, ``{{ hosts.H.port }}`` (SSH), ``{{ hosts.H.user }}`` and
``{{ hosts.H.vars.KEY }}`` come from the inventory. Inside shell commands (``run``,
``local``, ``check.command``, ``wait_for.command``) a value never enters the command text:
``{{ NAME }}`` becomes ``"${ITOPS_VAR_NAME}"`` and the value travels in that environment
variable (:attr:`Step.env`), so whatever it holds the shell only ever expands it as one word
and never parses it. A template inside shell quotes (``'{{ x }}'``, ``"{{ x }}"``) is a config
error with file:line: inside single quotes it would not be expanded, and a double-quoted string
is often handed to another shell (``su -c "..."``, ``sh -c "..."``) that would parse the value.
Templates inside ``$( )`` and backticks are fine. Elsewhere (hosts, ports, URLs) values are
inserted as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from itops.backup.options import PgServer
from itops.errors import ConfigError, ConfigProblem
from itops.inlinesecrets import find_inline_secrets, inline_secret_paths
from itops.inventory import Inventory
from itops.playbook.shellvars import (
    _TEMPLATE,
    TemplateQuoted,
    render,
    render_shell,
    show_command,
)
from itops.yamlload import (
    OptionalMapping,
    PositiveDuration,
    StrictModel,
    StrList,
    format_path,
    raise_if_problems,
    read_yaml,
    unknown_name,
    validate_model,
)

ACTIONS = ("run", "local", "check", "restore", "wait_for", "manual")
DEFAULT_TIMEOUT = 300.0
_DB_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def playbook_error(problems: list[ConfigProblem]) -> ConfigError:
    return ConfigError(problems, what="playbook")


class TcpTarget(StrictModel):
    host: str = Field(min_length=1)  # an inventory host name, or an address
    port: int | str  # a number, or a template rendering to one
    state: Literal["open", "closed"] = "open"  # closed: wait until nothing listens (a service stopped)


class HttpTarget(StrictModel):
    url: str = Field(min_length=1)
    status: int | list[int] = 200
    contains: str | None = None
    timeout: PositiveDuration = 10.0


def _tcp(value: object) -> object:
    if isinstance(value, str) and ":" in value:
        host, _, port = value.rpartition(":")
        return {"host": host, "port": port}
    return value


class Condition(StrictModel):
    """What a ``check`` or ``wait_for`` step tests: one of command, tcp, http."""

    command: str | None = None
    host: str | None = None  # for command: where it runs (default: here)
    expect_rc: int = 0
    expect_output: str | None = None  # a regular expression the output must match
    tcp: Annotated[TcpTarget, BeforeValidator(_tcp)] | None = None
    http: Annotated[HttpTarget, BeforeValidator(lambda v: {"url": v} if isinstance(v, str) else v)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Condition:
        given = [k for k in ("command", "tcp", "http") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of command, tcp, http")
        if self.host is not None and self.command is None:
            raise ValueError("host goes with command (tcp and http name their own host)")
        if self.expect_output is not None:
            try:
                re.compile(self.expect_output)
            except re.error as exc:
                raise ValueError(f"expect_output is not a valid regular expression: {exc}") from None
        return self


def _condition(value: object) -> object:
    return {"command": value} if isinstance(value, str) else value


class RestoreAction(StrictModel):
    """Restore a backup of the inventory.

    Without ``into``/``database``: the backup's restore test (itops.backup): the newest copy is
    restored into scratch space, verified as its ``restore_test`` says, timed, and removed.
    With ``into`` (file backups): the newest archive is extracted into that folder on the
    backup's host and kept. With ``database`` (postgres_dump): the newest dump is restored
    into that database on ``server`` (default: the backup's restore_test.server) and kept.
    """

    backup: str = Field(min_length=1)
    into: str | None = None
    database: str | None = None
    server: PgServer | None = None
    replace: bool = False  # allow replacing an existing database / a non-empty folder

    @model_validator(mode="after")
    def _shape(self) -> RestoreAction:
        if self.into and self.database:
            raise ValueError("set into (file backups) or database (postgres_dump), not both")
        if self.into is not None and not self.into.startswith("/") and "{{" not in self.into:
            raise ValueError(f"into must be an absolute path, got {self.into!r}")
        if self.database is not None and not _DB_RE.match(self.database) and "{{" not in self.database:
            raise ValueError("database must be a lowercase SQL identifier (a-z, 0-9, _)")
        if self.server is not None and self.database is None:
            raise ValueError("server goes with database")
        return self


class StepSpec(StrictModel):
    """One step: exactly one action key plus the common keys."""

    name: str | None = None
    run: str | None = None
    host: str | None = None  # with run: the inventory host
    local: str | None = None
    check: Annotated[Condition, BeforeValidator(_condition)] | None = None
    wait_for: Annotated[Condition, BeforeValidator(_condition)] | None = None
    restore: RestoreAction | None = None
    manual: str | None = None  # the prompt
    answer: str | None = None  # a recorded answer (unattended drills); "yes"/"no" or text
    timeout: PositiveDuration | None = None
    retries: int | None = Field(None, ge=0, le=1000)
    interval: PositiveDuration | None = None
    rollback: Annotated[tuple[Any, ...], BeforeValidator(lambda v: () if v is None else v)] = ()

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        given = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            what = ", ".join(given) if given else "none"
            raise ValueError(f"a step needs exactly one of {', '.join(ACTIONS)} (found: {what})")
        action = given[0]
        if action == "run" and not self.host:
            raise ValueError("a run step needs host: the inventory host to run it on (use local: to run here)")
        if self.host is not None and action != "run":
            raise ValueError(f"host goes with run; a {action} step names its host inside")
        if (self.retries is not None or self.interval is not None) and action not in ("check", "wait_for"):
            raise ValueError("retries and interval go with check and wait_for")
        if self.answer is not None and action != "manual":
            raise ValueError("answer goes with manual")
        return self

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) is not None)


def _raise(message: str) -> Any:
    raise ValueError(message)


def _non_empty(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("list at least one system this playbook recovers")
    return value


class PlaybookSpec(StrictModel):
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    systems: Annotated[StrList, AfterValidator(_non_empty)]
    rto: PositiveDuration
    rpo: PositiveDuration
    owner: str = Field(min_length=1)
    max_drill_age: PositiveDuration | None = None
    vars: OptionalMapping = {}
    steps: Annotated[list[Any], AfterValidator(lambda v: v or _raise("list at least one step"))]


# --- the resolved playbook --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A step with its templates resolved: what the drill runs and the dry run prints."""

    index: str  # "3", or "3.rollback.1"
    name: str
    action: str
    line: int
    spec: StepSpec  # with templates rendered
    timeout: float
    retries: int
    interval: float
    rollback: tuple[Step, ...] = ()
    #: the template values the step's shell commands expand (``ITOPS_VAR_*`` -> value)
    env: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.index} {self.name}"

    def shown(self, command: str) -> str:
        """``command`` for people (dry run, evidence): each ``"${ITOPS_VAR_x}"`` shown as its quoted value."""
        return show_command(command, dict(self.env))


@dataclass(frozen=True)
class Playbook:
    path: Path
    digest: str
    name: str
    description: str
    systems: tuple[str, ...]
    rto: float
    rpo: float
    owner: str
    max_drill_age: float | None
    vars: Mapping[str, Any]
    steps: tuple[Step, ...]

    def hosts(self) -> set[str]:
        """Inventory hosts the playbook's steps use."""
        out: set[str] = set()

        def visit(step: Step) -> None:
            for cond in (step.spec.check, step.spec.wait_for):
                if cond is not None and cond.host:
                    out.add(cond.host)
            if step.spec.host:
                out.add(step.spec.host)
            for r in step.rollback:
                visit(r)

        for s in self.steps:
            visit(s)
        return out


def host_context(inv: Inventory | None) -> dict[str, Any]:
    if inv is None:
        return {}
    return {
        name: {"address": h.address, "port": h.ssh.port, "user": h.ssh.user, "vars": dict(h.vars)}
        for name, h in inv.hosts.items()
    }


def load_playbook(
    path: str | Path, inventory: Inventory | None = None, overrides: Mapping[str, str] | None = None
) -> Playbook:
    """Load, validate and resolve a playbook; raise ConfigError (exit 4) with every problem.

    With an ``inventory``, host names and backups are checked against it and ``hosts.*``
    templates resolve; without one only the playbook itself is checked.
    """
    doc = read_yaml(path, playbook_error)
    if not doc.problems and not isinstance(doc.data, dict):
        doc.problems.append(ConfigProblem(doc.file, 1, "", "a playbook is a mapping with name, rto, steps, ..."))
    raise_if_problems(doc.problems, playbook_error)
    file, lines, data = doc.file, doc.lines, doc.data
    problems = find_inline_secrets(data, file=file, lines=lines)
    ignore = list(inline_secret_paths(data))
    spec, found = validate_model(PlaybookSpec, data, file=file, lines=lines, ignore=ignore)
    problems += found
    raw_vars = spec.vars if spec is not None else data.get("vars")
    variables = {**(raw_vars if isinstance(raw_vars, dict) else {}), **(overrides or {})}
    context = {**{k: v for k, v in variables.items()}, "hosts": host_context(inventory)}

    def problem(where: tuple[str | int, ...], message: str) -> None:
        problems.append(ConfigProblem(file, lines.nearest(where), format_path(where), message))

    def build(raw: object, where: tuple[str | int, ...], index: str, nested: bool) -> Step | None:
        step, found = validate_model(StepSpec, raw, file=file, lines=lines, prefix=where, ignore=ignore)
        problems.extend(found)
        if step is None:
            return None
        if nested and step.rollback:
            problem((*where, "rollback"), "a rollback step cannot have rollback steps of its own")
        rendered, env = _render_step(step, context, inventory is not None, lambda key, msg: problem((*where, key), msg))
        if inventory is not None:
            _check_refs(rendered, inventory, lambda key, msg: problem((*where, *key), _from_template(step, key, msg)))
        rollback = []
        for j, rb in enumerate(step.rollback):
            built = build(rb, (*where, "rollback", j), f"{index}.rollback.{j + 1}", True)
            if built is not None:
                rollback.append(built)
        action = rendered.action
        default_timeout = 60.0 if action in ("check", "wait_for") else DEFAULT_TIMEOUT
        return Step(
            index=index,
            name=rendered.name or _default_name(rendered, env),
            action=action,
            line=lines.nearest(where),
            spec=rendered,
            timeout=float(rendered.timeout or default_timeout),
            retries=int(rendered.retries if rendered.retries is not None else (0 if action == "check" else 1000)),
            interval=float(rendered.interval or (2.0 if action == "check" else 1.0)),
            rollback=tuple(rollback),
            env=tuple(sorted(env.items())),
        )

    steps = []
    raw_steps = spec.steps if spec is not None else data.get("steps")
    for i, raw in enumerate(raw_steps if isinstance(raw_steps, list) else []):
        built = build(raw, ("steps", i), str(i + 1), False)
        if built is not None:
            steps.append(built)
    names = [s.name for s in steps]
    for i, s in enumerate(steps):
        if names.count(s.name) > 1 and names.index(s.name) != i:
            problem(("steps", i, "name"), f"duplicate step name {s.name!r} (answers and history refer to names)")
    raise_if_problems(problems, playbook_error)
    assert spec is not None
    return Playbook(
        path=Path(path),
        digest=doc.digest,
        name=spec.name,
        description=spec.description,
        systems=tuple(spec.systems),
        rto=float(spec.rto),
        rpo=float(spec.rpo),
        owner=spec.owner,
        max_drill_age=spec.max_drill_age,
        vars=variables,
        steps=tuple(steps),
    )


def _default_name(step: StepSpec, env: Mapping[str, str]) -> str:
    a = step.action
    if a == "run":
        return f"run on {step.host}: {show_command(str(step.run), env)[:40]}"
    if a == "local":
        return f"local: {show_command(str(step.local), env)[:40]}"
    if a == "restore" and step.restore is not None:
        return f"restore {step.restore.backup}"
    if a == "manual":
        return f"manual: {str(step.manual)[:40]}"
    cond = step.check or step.wait_for
    assert cond is not None
    what = f"tcp {cond.tcp.host}:{cond.tcp.port}" if cond.tcp else f"http {cond.http.url}" if cond.http else "command"
    return f"{a} {what}"


_SHELL_FIELDS = {("run",), ("local",), ("check", "command"), ("wait_for", "command")}


def _render_step(
    step: StepSpec, context: Mapping[str, Any], have_inventory: bool, problem: Callable[[str, str], None]
) -> tuple[StepSpec, dict[str, str]]:
    data = step.model_dump(by_alias=True, exclude={"rollback"})
    env: dict[str, str] = {}

    def walk(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, str):
            try:
                if path in _SHELL_FIELDS:
                    return render_shell(value, context, env)
                return render(value, context)
            except TemplateQuoted as exc:
                name, where = exc.args
                tpl = "{{ " + name + " }}"
                if not where:
                    problem(
                        path[0],
                        f"the value of {tpl} in {'.'.join(path)} holds a NUL byte, which no shell command can be given",
                    )
                    return value
                problem(
                    path[0],
                    f"{tpl} is inside {where} in {'.'.join(path)}: write it outside quotes, "
                    f'e.g. --opt={tpl} or "text "{tpl}, or set a variable first (v={tpl}; ... "$v"): '
                    "the value is passed as one word and never parsed by the shell",
                )
                return value
            except KeyError as exc:
                name = str(exc.args[0])
                if name.startswith("hosts.") and not have_inventory:
                    return value  # resolved when an inventory is given
                known = ", ".join(sorted(k for k in context if k != "hosts")) or "none"
                problem(path[0], f"unknown template variable {name!r} (vars: {known}; hosts.NAME.address/port/...)")
                return value
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path) for v in value]
        return value

    rendered = walk(data, ())
    rendered["rollback"] = ()
    try:
        return StepSpec.model_validate(rendered), env
    except ValidationError as exc:  # a template rendered into something invalid
        for err in exc.errors(include_url=False):
            loc = [str(p) for p in err["loc"]]
            problem(loc[0] if loc else "", f"after templates: {'.'.join(loc)}: {err['msg']}")
        return step, env


def _from_template(raw: StepSpec, key: tuple[str, ...], message: str) -> str:
    """``message`` plus, when the value came from ``{{ var }}``, which var and how to set it."""
    value: Any = raw
    for part in key:
        value = getattr(value, part, None)
    names = [n for n in _TEMPLATE.findall(value) if not n.startswith("hosts.")] if isinstance(value, str) else []
    if not names:
        return message
    how = "; ".join(
        f"{{{{ {n} }}}} is the playbook var {n!r}: set it under vars: or with --var {n}=VALUE" for n in names
    )
    return f"{message} ({how})"


def _check_refs(step: StepSpec, inv: Inventory, problem: Callable[[tuple[str, ...], str], None]) -> None:
    if step.host and step.host not in inv.hosts:
        problem(("host",), unknown_name("host", step.host, list(inv.hosts)))
    for key in ("check", "wait_for"):
        cond: Condition | None = getattr(step, key)
        if cond is not None and cond.host and cond.host not in inv.hosts:
            problem((key, "host"), unknown_name("host", cond.host, list(inv.hosts)))
        if cond is not None and cond.tcp is not None:
            try:
                port = int(cond.tcp.port)
            except ValueError:
                port = 0
            if not 1 <= port <= 65535:
                problem((key, "tcp", "port"), f"must be a port 1-65535, got {cond.tcp.port!r}")
    r = step.restore
    if r is not None:
        b = inv.backups.get(r.backup)
        if b is None:
            problem(("restore", "backup"), unknown_name("backup", r.backup, list(inv.backups)))
        elif r.into and b.kind != "file":
            problem(("restore", "into"), f"into restores file backups; {r.backup} is {b.kind}")
        elif r.database and b.kind != "postgres_dump":
            problem(("restore", "database"), f"database restores postgres_dump backups; {r.backup} is {b.kind}")
        elif not r.into and not r.database and b.kind not in ("file", "postgres_dump", "restic"):
            problem(("restore", "backup"), f"{b.kind} backups have no restore test")
