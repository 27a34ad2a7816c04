"""The one module a CoOp ``train.py`` imports for SHIP (its line marked ``# SHIP plug-in``; needs dassl).

Importing it registers SHIP's Dassl trainers (``SHIP_CoOp`` and ``SHIP_<method>`` for every registered method)
and the datasets the checkout lacks. The adapters themselves live in ``trainers/ship/dassl/``; the
``add_ship_cfg`` that ``extend_cfg`` calls is the dassl-free ``trainers.ship.dassl.config.add_ship_cfg``.
"""
from trainers.ship.dassl import datasets, method_trainers  # noqa: F401  registers the datasets and the trainers
