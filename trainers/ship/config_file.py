"""Reading a YAML config file: a syntax error, or a top level that is not a mapping, is one error line naming the
file and the line (yacs would raise yaml's multi-line error or an AttributeError)."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ShipError


def read_config_file(path: str | Path) -> dict:
    """The mapping a config file holds ({} for an empty file). ShipError for a missing file, a YAML syntax error
    (its line) or a top level that is not ``KEY: value`` pairs."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ShipError(f"config file not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ShipError(f"unreadable config file {path}: {type(exc).__name__}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ShipError(f"bad config file {path}{where}: YAML syntax error ({problem}); expected KEY: value lines "
                        f"as in configs/trainers/SHIP/vit_b16.yaml") from None
    if tree is not None and not isinstance(tree, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ShipError(f"bad config file {path}, line {line}: its top level is a {type(tree).__name__}, expected a "
                        f"mapping of KEY: value (e.g. TRAINER: / SHIP: / GEN_EPOCHS: 50)")
    return tree or {}
