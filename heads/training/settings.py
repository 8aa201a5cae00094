"""The one table of head settings keys: each key's type, range and whether it sets the stacked
shape, declared once (:class:`Key`, :func:`declare`), and the one checker of a value for a key.

The still model, dim-reduction and shared head keys are declared here; a head method declares
the keys only it uses with its record (:mod:`heads.training.registry`). :mod:`heads.training.resolve`
applies defaults < ``--config FILE.yaml`` < ``--set`` (or Python values) through :meth:`Key.coerce`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from featcache.errors import FeatcacheError

TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class Key:
    """One settings key: ``type`` (int, float, str or bool), an inclusive ``minimum`` or an
    exclusive ``above``, an exclusive ``below``, the allowed ``choices`` of a str, ``why`` a
    bound holds, and ``shape``: configurations stacked into one model must agree on it (it
    fixes tensor shapes or the number of steps); ``optional``: None is allowed (decided later)."""

    name: str
    type: type
    minimum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    why: str = ""
    shape: bool = False
    optional: bool = False  # None is a value (chosen later, e.g. by the device)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already of the key's type) is out of range, or None."""
        if self.choices and value not in self.choices:
            return f"expected one of {', '.join(self.choices)}"
        low = None
        if self.minimum is not None and value < self.minimum:
            low = f">= {self.minimum:g}"
        elif self.above is not None and value <= self.above:
            low = f"> {self.above:g}"
        if self.below is not None and not (self.minimum or 0) <= value < self.below:
            return f"expected a rate in [{self.minimum or 0:g}, {self.below:g})"
        if low:
            kind = "an integer" if self.type is int else "a number"
            return f"expected {kind} {low}" + (f" ({self.why})" if self.why else "")
        return None

    def parse(self, text: str) -> Any:
        """``text`` (a ``--set`` value) as the key's type, range-checked; FeatcacheError naming the key."""
        text = str(text).strip()
        if self.optional and text.lower() in ("none", "null", "~", ""):
            return None
        try:
            if self.type is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Any = text.lower() in ("true", "1", "yes")
            elif self.type is float:
                value = float(text)
                if not math.isfinite(value):
                    raise ValueError
            else:
                value = self.type(text)
        except ValueError:
            kind = TYPE_NAMES.get(self.type, self.type.__name__)
            raise FeatcacheError(f"--set {self.name}={text}: expected {'a finite ' if kind == 'float' else 'an '}{kind}") from None
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        if value is None and self.optional:
            return
        problem = self.problem(value)
        if problem:
            raise FeatcacheError(f"--set {self.name}={value}: {problem}")

    def coerce(self, value: Any, where: str) -> Any:
        """A value from a config file or from Python, converted and checked like ``--set``;
        the error names ``where`` (the file, or ``config``) and the key."""
        if value is None and self.optional:
            return None
        if isinstance(value, (dict, list, tuple)) or value is None:
            raise FeatcacheError(f"{where}: {self.name}: expected a single value, got {value!r}")
        if isinstance(value, bool) and self.type in (int, float):
            raise FeatcacheError(f"{where}: {self.name}: {value}: expected a {TYPE_NAMES[self.type]}")
        if isinstance(value, self.type) and not (self.type is int and isinstance(value, bool)):
            parsed = value
        elif isinstance(value, int) and self.type is float:
            parsed = float(value)
        else:
            try:
                return self.parse(str(value))
            except FeatcacheError as exc:
                reason = str(exc).split(": ", 1)[-1]
                raise FeatcacheError(f"{where}: {self.name}: {value}: {reason}") from None
        problem = self.problem(parsed)
        if problem:
            raise FeatcacheError(f"{where}: {self.name}: {value}: {problem}")
        return parsed


KEYS: dict[str, Key] = {}


def declare(*keys: Key) -> None:
    """Add keys to the table; declaring a key again is allowed only with the same declaration."""
    for key in keys:
        known = KEYS.get(key.name)
        if known is not None and known != key:
            raise ValueError(f"settings key {key.name!r} is already declared differently: {known}")
        KEYS[key.name] = key


def key(name: str) -> Key:
    try:
        return KEYS[name]
    except KeyError:
        raise ValueError(f"settings key {name!r} is not declared in heads.training.settings") from None


def positive_int(name: str, *, shape: bool = False) -> Key:
    return Key(name, int, minimum=1, shape=shape)


def batch_int(name: str) -> Key:
    return Key(name, int, minimum=2, why="batch norm needs two rows", shape=True)


def positive_float(name: str) -> Key:
    return Key(name, float, above=0)


def non_negative_float(name: str) -> Key:
    return Key(name, float, minimum=0)


def rate(name: str) -> Key:
    return Key(name, float, minimum=0, below=1)


# The keys every head has (still model, dim-reduction network) and those shared by the heads.
declare(
    Key("seed", int),
    Key("still_model", str, choices=("auto", "logits", "linear"), shape=True),
    positive_float("still_lr"), positive_int("still_epochs", shape=True), batch_int("still_batch_size"),
    non_negative_float("still_weight_decay"), positive_int("still_min_steps", shape=True),
    positive_int("d1", shape=True), positive_float("dimred_lr"), positive_int("dimred_epochs", shape=True),
    batch_int("dimred_batch_size"), rate("dimred_dropout"), positive_int("dimred_min_steps", shape=True),
    positive_int("d0", shape=True), positive_float("lr"), positive_int("epochs", shape=True),
    batch_int("batch_size"), positive_int("min_steps", shape=True), rate("dropout"), non_negative_float("noise"),
    Key("select", str, choices=("fused", "derived")),
    Key("pairing", str, choices=("co-class", "instance"), shape=True),
)
