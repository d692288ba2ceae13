"""The simulator venue: the built-in broker that fills orders at the session's auctions.

:class:`SimBroker` implements the :class:`~quant.execution.Broker` protocol on
PostgreSQL (tables ``ops.sim_*``); :func:`rewind_sim_account` rewinds a simulator
account to the start of a session, for reruns of backfills and replays.

Modules: ``_broker`` (the broker on top), ``_store`` and ``_sql`` (the store:
every statement on ``ops.sim_*``, its transactions and round trips), ``_matching``
(the auction computed in memory, no database) and ``_rewind`` (the simulator's
part of a rewind).
"""

from quant.venues.sim._broker import SimBroker
from quant.venues.sim._rewind import rewind_sim_account

__all__ = ["SimBroker", "rewind_sim_account"]
