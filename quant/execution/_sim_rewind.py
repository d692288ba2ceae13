"""The simulator's part of a rewind, as the execution stages import it.

It lives with the simulator, :func:`quant.venues.sim.rewind_sim_account`.
"""

from quant.venues.sim import rewind_sim_account

__all__ = ["rewind_sim_account"]
