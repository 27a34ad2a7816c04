"""The reports layer: what a run and a set of runs report. ``metrics`` (accuracy, macro-F1, H, Dassl's evaluator lines),
``quality`` (synthetic feature statistics), ``summary`` (the paper's tables from run folders; ``python -m
trainers.ship.reports.summary``) with ``columns``, ``charts`` and ``feature_map`` (figures: matplotlib, imported only
where a figure is drawn, through ``pyplot``), and ``interpret`` (the nearest words of learned prompt vectors;
``python -m trainers.ship.reports.interpret``). ``published.json`` holds the paper's numbers."""
