"""Tools: the CoOp checkout installer (``python -m trainers.ship.tools.install_into PATH/TO/CoOp``)."""
