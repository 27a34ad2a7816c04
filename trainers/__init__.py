"""Trainers. ``trainers.ship`` is SHIP: the core, dassl-free, and its Dassl adapters in ``trainers.ship.dassl``,
which import Dassl only when a Dassl ``train.py`` runs; ``trainers.ship_methods`` is the module such a ``train.py``
imports."""
