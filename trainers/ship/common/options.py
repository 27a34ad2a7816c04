"""How the running entry point spells the settings an error message suggests: the core's command-line flags
(``python -m trainers.ship``), or the config keys of a Dassl ``train.py`` (this project's or CoOp's), which has
no such flags."""
from __future__ import annotations

FLAGS = {"weights": "--weights PATH", "clip_cache_dir": "--clip-cache-dir DIR",
         "allow_mismatch": "--allow-mismatch (config ALLOW_SETUP_MISMATCH True)"}
CONFIG_KEYS = {"weights": "MODEL.BACKBONE.WEIGHTS PATH", "clip_cache_dir": "MODEL.BACKBONE.DOWNLOAD_ROOT DIR",
               "allow_mismatch": "ALLOW_SETUP_MISMATCH True"}
_current = dict(FLAGS)


def option(name: str) -> str:
    """The setting ``name`` as the user of this entry point writes it."""
    return _current[name]


def use_config_keys() -> None:
    """Under Dassl's ``train.py``: suggest config keys instead of the core's flags."""
    _current.update(CONFIG_KEYS)
