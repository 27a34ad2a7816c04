"""The config layer: a run's yacs config, from the defaults (``defaults``: the core's keys, and every method's node from
``methods/``), through config files and ``KEY VALUE`` overrides (``files``), to the one check of every setting
against its declared range (``build``). Imports the methods below it, never the run or the reports above it."""
from trainers.ship.config.build import (DASSL_PREFIXES, MOVED, build_cfg, check_moved, check_settings, declared_ranges,
                                        set_key)
from trainers.ship.config.defaults import (HEAD_RECIPES, core_ranges, get_cfg_defaults, ship_trainer_defaults,
                                           ship_trainer_ranges)
from trainers.ship.config.files import FloatTolerantCfgNode, accept_ints_for_floats, float_overrides, read_config_file

__all__ = ["DASSL_PREFIXES", "MOVED", "build_cfg", "check_moved", "check_settings", "declared_ranges", "set_key",
           "HEAD_RECIPES", "core_ranges", "get_cfg_defaults", "ship_trainer_defaults",
           "ship_trainer_ranges", "FloatTolerantCfgNode", "accept_ints_for_floats", "float_overrides", "read_config_file"]
