"""Settings of order generation, the simulator and the broker adapters (``QUANT_EXECUTION__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from quant._settings._section import Section

__all__ = ["ExecutionSettings"]


class ExecutionSettings(Section):
    """Order generation, the simulator broker and the broker adapters' retry policy."""

    min_order_notional_usd: float = Field(
        100.0, ge=0, description="orders with a smaller qty x reference price are dropped, USD"
    )
    max_adv_participation: float = Field(
        0.08, gt=0, le=1, description="largest order as a share of average daily volume (shares)"
    )
    adv_sessions: int = Field(
        20, ge=1, le=260, description="sessions of the average daily volume"
    )
    lot_sizes: dict[str, int] = Field(
        default_factory=dict, description="per symbol: order sizes are multiples of this (default 1)"
    )
    cash_buffer: float = Field(
        0.002,
        ge=0,
        lt=1,
        description="fraction of equity buys leave unspent (slippage and commission headroom)",
    )
    strategy: str = Field("daily", description="strategy tag of generated orders (sidecar overrides)")
    fill_auction: Literal["open", "close"] = Field(
        "open",
        description="sim: orders of session D fill at the next session's open (opg) or close (cls)",
    )
    sim_initial_cash_usd: float = Field(
        1_000_000.0, gt=0, description="cash of a new simulator account, USD"
    )
    sim_slippage_bps: float = Field(5.0, ge=0, description="sim: fill price moved against the order")
    sim_commission_per_share_usd: float = Field(
        0.005, ge=0, description="sim: commission per filled share, USD"
    )
    sim_max_participation: float = Field(
        0.1, gt=0, le=1, description="sim: largest share of an auction's volume one symbol fills"
    )
    close_after_missing_sessions: int = Field(
        5,
        ge=1,
        le=260,
        description=(
            "sim: a held symbol without a bar for this many sessions in a row is closed at its "
            "last close (a recorded dead_symbol event), never carried as a ghost position"
        ),
    )
    broker_max_attempts: int = Field(
        5, ge=1, le=20, description="alpaca/ibkr: attempts per request (429, 5xx, timeouts)"
    )
    broker_backoff_s: float = Field(
        0.5, ge=0, description="alpaca/ibkr: first wait between attempts, doubled each time"
    )
    broker_max_backoff_s: float = Field(8.0, ge=0, description="alpaca/ibkr: longest wait")
    broker_timeout_s: float = Field(
        10.0, gt=0, le=300, description="alpaca/ibkr: timeout of one request or connection"
    )
    ib_client_id: int = Field(
        18, ge=0, description="client id of the order connection to the IB API (not the data one)"
    )

    @field_validator("lot_sizes", mode="after")
    @classmethod
    def _positive_lots(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 1}
        if bad:
            raise ValueError(f"lot sizes must be >= 1, got {bad}")
        return {k.strip().upper(): v for k, v in value.items()}
