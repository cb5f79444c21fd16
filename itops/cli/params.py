"""Options shared by several commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def inventory_param(required: bool = True, help: str = "Inventory file.") -> Callable[[F], F]:
    """The inventory, accepted both ways everywhere: ``itops CMD inv.yaml`` and ``itops CMD -i inv.yaml``.

    The command receives it as ``inventory_path`` (None when optional and not given).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, inventory_arg: Path | None, inventory_opt: Path | None, **kwargs: Any) -> Any:
            if inventory_arg is not None and inventory_opt is not None and inventory_arg != inventory_opt:
                raise click.UsageError(f"two inventories given ({inventory_arg} and -i {inventory_opt}): give one")
            path = inventory_opt or inventory_arg
            if path is None and required:
                raise click.UsageError("give the inventory: INVENTORY or -i INVENTORY")
            return fn(*args, inventory_path=path, **kwargs)

        path_type = click.Path(dir_okay=False, path_type=Path)
        with_opt = click.option(
            "-i",
            "--inventory",
            "inventory_opt",
            type=path_type,
            default=None,
            help=help + " May also be given as the INVENTORY argument.",
        )
        with_arg = click.argument("inventory_arg", metavar="[INVENTORY]", required=False, type=path_type)
        return with_arg(with_opt(wrapper))  # type: ignore[return-value]

    return decorate


#: ``--trust-on-first-use FILE`` (as ``tofu_file``): every command that connects to hosts takes it.
tofu_option = click.option(
    "--trust-on-first-use",
    "tofu_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Record unknown host keys in FILE instead of rejecting them (changed keys are still rejected).",
)


def waivers_option(help: str = "Extra waivers file (same shape as the inventory's waivers:).") -> Callable[[F], F]:
    """``--waivers FILE`` (as ``waivers_file``): waivers besides the inventory's own."""
    return click.option(
        "--waivers",
        "waivers_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help=help,
    )
