"""matplotlib's ``pyplot``, drawing to files only (the Agg backend: no display), for the charts and the feature map.

matplotlib is the one heavy dependency of the reports: the modules that draw import this one, and their callers
import them inside the function that draws.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]
