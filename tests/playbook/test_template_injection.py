"""A playbook value can never become shell syntax, whatever the author writes around the template (#12).

Hostile values run for real in every quoting context: bare, inside ``$( )``, backticks, ``$( )``
and backticks within double quotes (all run, the value arrives intact as one word), and inside
single or double quotes (refused when the playbook loads, exit 4 with file:line, nothing run).
Local steps run through ``/bin/sh``; host steps over a real sshd lab host.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from itops.cli.main import cli

#: (label, command template writing the value to OUT); {{ v }} is the hostile value
RUN_CONTEXTS = [
    ("bare", "printf %s {{ v }} > OUT"),
    ("dollar-paren", 'x=$(printf %s {{ v }}); printf %s "$x" > OUT'),
    ("backticks", 'x=`printf %s {{ v }}`; printf %s "$x" > OUT'),
    ("dollar-paren-in-double-quotes", 'printf %s "$(printf %s {{ v }})" > OUT'),
    ("backticks-in-double-quotes", 'printf %s "`printf %s {{ v }}`" > OUT'),
    ("prefix", "printf %s pre-{{ v }}-post > OUT"),
]
QUOTED_CONTEXTS = [
    ("single", "printf %s '{{ v }}' > OUT", "single quotes"),
    ("double", 'printf %s "{{ v }}" > OUT', "double quotes"),
    ("double-after-text", 'printf %s "a {{ v }} b" > OUT', "double quotes"),
    ("dollar-single", "printf %s $'{{ v }}' > OUT", "single quotes"),
    ("here-document", "cat > OUT <<EOF\n{{ v }}\nEOF", "a here-document"),
    ("quoted-here-document", "cat > OUT <<-'EOF'\n\t{{ v }}\n\tEOF", "a here-document"),
]


def hostile_values(pwned: Path) -> list[str]:
    p = str(pwned)
    return [
        f"x'; touch {p}; '",  # breaks out of the author's single quotes around a shlex.quote'd value
        f'x"; touch {p}; "',
        f"$(touch {p})",  # expanded when a quoted value lands inside double quotes
        f"`touch {p}`",
        f"`; touch {p}; echo `",  # ends the author's backticks early
        f"\\`; touch {p}; echo \\`",
        f"a b  *  ; touch {p} # \n touch {p}",
    ]


def playbook(tmp_path: Path, steps: list[str], name: str = "inject") -> Path:
    path = tmp_path / f"{name}.yaml"
    body = "".join(f"  - {{name: s{i}, {step}}}\n" for i, step in enumerate(steps))
    path.write_text(
        textwrap.dedent("""\
        name: inject
        description: hostile values in every quoting context
        systems: [here]
        rto: 5m
        rpo: 1h
        owner: tests
        vars: {v: placeholder}
        steps:
    """)
        + body
    )
    return path


def yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def drill(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["dr", "drill", *args])
    return result.exit_code, result.stdout + result.stderr


def _steps(kind: str, commands: list[str], host: str | None) -> list[str]:
    where = f", host: {host}" if host else ""
    return [f"{kind}: {yaml_str(c)}{where}" for c in commands]


@pytest.mark.parametrize("value_index", range(7))
def test_hostile_value_in_every_unquoted_context_arrives_as_one_word_here(tmp_path, value_index):
    pwned = tmp_path / "pwned"
    value = hostile_values(pwned)[value_index]
    outs = [tmp_path / f"out-{label}" for label, _ in RUN_CONTEXTS]
    commands = [cmd.replace("OUT", str(out)) for (_, cmd), out in zip(RUN_CONTEXTS, outs, strict=True)]
    pb = playbook(tmp_path, _steps("local", commands, None))
    code, out = drill(str(pb), "--var", f"v={value}", "--store", str(tmp_path / "store"), "--yes")
    assert code == 0, out
    assert not pwned.exists()
    for (label, _), file in zip(RUN_CONTEXTS, outs, strict=True):
        assert file.read_text() == (f"pre-{value}-post" if label == "prefix" else value), label


@pytest.mark.parametrize(("label", "command", "where"), QUOTED_CONTEXTS, ids=[c[0] for c in QUOTED_CONTEXTS])
def test_template_inside_quotes_is_a_config_error_with_file_and_line(tmp_path, label, command, where):
    pwned = tmp_path / "pwned"
    pb = playbook(tmp_path, ["local: 'true'", *_steps("local", [command.replace("OUT", str(tmp_path / "o"))], None)])
    code, out = drill(str(pb), "--var", f"v={hostile_values(pwned)[0]}", "--store", str(tmp_path / "store"))
    assert code == 4, out
    assert f"{pb}:10:" in out and f"{{{{ v }}}} is inside {where} in local" in out
    assert not pwned.exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("command", "contexts"),
    [
        ("echo {{ a }} '{{ b }}' \"{{ c }}\"", ["bare", "single quotes", "double quotes"]),
        ('kill "$(cat {{ a }}/pid)" `cat {{ b }}` "`cat {{ c }}`"', ["bare", "bare", "bare"]),
        ('echo $(( 1 + 2 )) $(echo "{{ a }}") \\\'{{ b }}', ["double quotes", "bare"]),
        ("cat <<EOF\nit's {{ a }}\nEOF\necho '{{ b }}' {{ c }}", ["a here-document", "single quotes", "bare"]),
        ("cat <<<{{ a }}; echo # '{{ b }}\necho {{ c }}", ["bare", "bare", "bare"]),
    ],
)
def test_quoting_context_of_each_template(command, contexts):
    from itops.playbook.shellvars import _TEMPLATE, _template_contexts

    found = _template_contexts(command)
    assert [found.get(m.start(), "bare") for m in _TEMPLATE.finditer(command)] == contexts


def test_dry_run_shows_the_values_quoted(tmp_path):
    pb = playbook(tmp_path, _steps("local", ["printf %s {{ v }}"], None))
    code, out = drill(str(pb), "--var", "v=a'b; c", "--dry-run")
    assert code == 0, out
    assert "here: printf %s 'a'\"'\"'b; c'" in out


@pytest.mark.integration
def test_hostile_values_over_ssh_arrive_as_one_word_and_never_run(fleet_factory, tmp_path):
    """The same contexts as host steps on a real sshd lab host (its files are this machine's)."""
    lab = fleet_factory(1)
    pwned = tmp_path / "pwned"
    (tmp_path / "outs").mkdir()
    for n, value in enumerate(hostile_values(pwned)):
        outs = [tmp_path / "outs" / f"{n}-{label}" for label, _ in RUN_CONTEXTS]
        commands = [cmd.replace("OUT", str(out)) for (_, cmd), out in zip(RUN_CONTEXTS, outs, strict=True)]
        steps = _steps("run", commands, "lab1")
        check = yaml_str(f'test "$(cat {outs[0]})" = {{{{ v }}}}')
        steps.append(f"check: {{command: {check}, host: lab1}}")
        pb = playbook(tmp_path, steps, name=f"inject{n}")
        code, out = drill(
            str(pb), "-i", str(lab.inventory_path), "--var", f"v={value}", "--store", str(tmp_path / "store")
        )
        assert code == 0, out
        assert not pwned.exists(), value
        for (label, _), file in zip(RUN_CONTEXTS, outs, strict=True):
            assert file.read_text() == (f"pre-{value}-post" if label == "prefix" else value), (value, label)
    quoted = playbook(tmp_path, _steps("run", ["echo '{{ v }}'"], "lab1"), name="quoted")
    code, out = drill(
        str(quoted),
        "-i",
        str(lab.inventory_path),
        "--var",
        f"v={hostile_values(pwned)[0]}",
        "--store",
        str(tmp_path / "store"),
    )
    assert code == 4 and f"{quoted}:9:" in out and "inside single quotes in run" in out, out
    assert not pwned.exists()


def test_value_with_a_nul_byte_is_a_config_error_not_a_crash(tmp_path):
    pb = playbook(tmp_path, _steps("local", ["printf %s {{ v }}"], None))
    pb.write_text(pb.read_text().replace("vars: {v: placeholder}", 'vars: {v: "a\\0b"}'))
    code, out = drill(str(pb), "--store", str(tmp_path / "store"))
    assert code == 4, out
    assert f"{pb}:9:" in out and "holds a NUL byte" in out
