"""Trainers. ``trainers.ship`` is the dassl-free SHIP core; the Dassl adapters
register themselves only when ``dassl`` is importable."""
