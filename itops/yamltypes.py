"""Value types of user-written YAML: ``1h30m`` durations, ``10MB`` sizes, ports, environment variable
names, lenient lists and mappings, and :class:`StrictModel`, the base of every model of a YAML file.

They are annotated pydantic types: the conversion runs while :func:`itops.yamlload.validate_model`
validates, and a bad value becomes a problem with the file, line and key path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = [
    "Duration",
    "EnvName",
    "OptionalMapping",
    "Port",
    "PositiveDuration",
    "Size",
    "StrList",
    "StrictModel",
    "parse_duration",
    "parse_size",
]


# --- durations and sizes ---------------------------------------------------------------

_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"30m"``, ``"26h"``, ``"2d"`` or ``"1h30m"``."""
    hint = "use seconds or a number with s/m/h/d, e.g. 90s, 30m, 1h30m, 2d"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration ({hint})")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(rf"(?:{_DURATION_PART.pattern})+", text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"invalid duration {value!r}: {hint}")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from ``1024``, ``"10MB"`` (1000-based), ``"512KiB"`` (1024-based) and so on."""
    hint = "use bytes or a number with B, KB, MB, GB, TB (1000-based) or KiB, MiB, GiB, TiB (1024-based)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a size ({hint})")
    if isinstance(value, int | float):
        number, unit = float(value), "B"
    else:
        match = _SIZE_RE.fullmatch(value.strip())
        if not match or match.group(2).upper() not in (*_SIZE_UNITS, ""):
            raise ValueError(f"invalid size {value!r}: {hint}")
        number, unit = float(match.group(1)), match.group(2).upper() or "B"
    if number < 0:
        raise ValueError(f"invalid size {value!r}: must not be negative")
    return round(number * _SIZE_UNITS[unit])


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


#: A duration in seconds (>= 0) written as a number or ``1h30m``-style string.
Duration = Annotated[float, BeforeValidator(parse_duration)]
#: A duration in seconds that must be > 0 (timeouts, RPO, RTO).
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
#: A size in bytes written as a number or ``10MB``-style string.
Size = Annotated[int, BeforeValidator(parse_size)]


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be 1-65535")
    return value


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError("must name an environment variable (letters, digits, '_'), not hold the secret")
    return value


def _str_list(value: object) -> object:
    return [value] if isinstance(value, str) else ([] if value is None else value)


def _mapping(value: object) -> object:
    return {} if value is None else value


#: A TCP port, 1-65535.
Port = Annotated[int, AfterValidator(_port)]
#: The name of an environment variable that holds a secret (never the secret itself).
EnvName = Annotated[str, AfterValidator(_env_name)]
#: A list of strings (kept as a tuple); a lone string is a one-item list and null an empty one.
StrList = Annotated[tuple[str, ...], BeforeValidator(_str_list)]
#: A mapping of names to anything; null (a key with nothing after it) is an empty mapping.
OptionalMapping = Annotated[dict[str, Any], BeforeValidator(_mapping)]


class StrictModel(BaseModel):
    """Base for models of user-written YAML: unknown keys are errors, models are frozen.

    Numbers are accepted where strings are expected (``ticket: 123``, ``tier: 1``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)
    #: Fields the loader fills in itself (a name, a line number): never accepted from the file.
    internal_fields: ClassVar[frozenset[str]] = frozenset()
