"""The Dassl layer: every adapter between the core and Dassl / CoOp, in one place. ``config`` (SHIP's keys in Dassl's
config, checks before a run), ``classes`` and ``run_guard`` (one error line, the unfinished folder moved aside)
import no Dassl: the installer and ``train.py`` use ``config`` before Dassl is known to be there. ``feature_trainer`` (a
Dassl ``TrainerX`` on cached features), ``ship_coop`` (SHIP_CoOp, epoch by epoch), ``method_trainers``
(``SHIP_<method>`` for every registered method) and ``datasets`` (Dassl's dataset registry) import Dassl;
``trainers/ship_methods.py`` is the one module a CoOp ``train.py`` imports."""
