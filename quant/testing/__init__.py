"""Fakes of external services for tests: Alpaca's HTTP APIs and the IB API gateway.

They are real servers on 127.0.0.1 (a threaded HTTP server; a TCP server
speaking the TWS API wire protocol), so the real client libraries
(alpaca-py, ib_insync / ib_async) are exercised end to end.
"""

from quant.testing.fake_alpaca import Failure, FakeAlpaca, FakeRequest, FakeResponse

__all__ = ["FakeAlpaca", "FakeRequest", "FakeResponse", "Failure"]
