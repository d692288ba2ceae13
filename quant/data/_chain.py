"""A failover chain of market-data providers, tried in order per symbol.

For a range of dates, each symbol is served by the first provider of the
chain that returns at least one bar for it in the range; the symbols it
does not deliver go to the next provider. What came from where is part of
the result (:class:`SourcedBars`) and ingestion records it in
``raw.bars.provider`` and ``ops.ingestion_sources``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from quant.data._base import (
    ACTION_COLUMNS,
    ACTION_DTYPES,
    BAR_COLUMNS,
    BAR_DTYPES,
    SYMBOL_COLUMNS,
    SYMBOL_DTYPES,
    MarketDataProvider,
    empty_frame,
)
from quant.exceptions import ConfigurationError, ProviderError

__all__ = ["FailoverProvider", "SourcedBars", "lists_universe"]


def lists_universe(provider: MarketDataProvider) -> bool:
    """Whether ``provider.symbols()`` enumerates every symbol it can deliver bars for."""
    return bool(getattr(provider, "lists_universe", True))


@dataclass(frozen=True)
class SourcedBars:
    """Bars of a failover fetch and where each symbol came from.

    Attributes
    ----------
    bars : pandas.DataFrame of shape (n_rows, 8)
        :data:`~quant.data.BAR_COLUMNS` plus ``provider`` (str), the name of
        the provider that served the row.
    served : dict of str to list of str
        Provider name to the symbols it served, in chain order.
    skipped : dict of str to list of str
        Symbol to the providers tried before the one that served it (those
        that had no bar for it, or failed).
    unserved : list of str
        Symbols no provider delivered a bar for.
    errors : dict of str to str
        Provider name to the error it raised (the chain went on without it).
    """

    bars: pd.DataFrame
    served: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    unserved: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class FailoverProvider:
    """Several providers as one, tried in order per symbol.

    Parameters
    ----------
    providers : sequence of MarketDataProvider
        The chain, first choice first; names must be distinct.
    symbols : sequence of str, optional
        The universe to fetch. Empty means the union of the reference data
        of the members that can list their universe (``csv``,
        ``synthetic``); providers that cannot (``alpaca``, ``ibkr``) are
        asked for the universe's symbols.

    Raises
    ------
    ConfigurationError
        If the chain is empty or names a provider twice.
    """

    def __init__(
        self, providers: Sequence[MarketDataProvider], symbols: Sequence[str] = ()
    ) -> None:
        if not providers:
            raise ConfigurationError("a failover chain needs at least one provider")
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"provider chain {names} names a provider twice")
        self.providers: tuple[MarketDataProvider, ...] = tuple(providers)
        self.name: str = ",".join(names)
        self.explicit_symbols: tuple[str, ...] = tuple(symbols)
        self.lists_universe: bool = bool(self.explicit_symbols) or any(
            lists_universe(p) for p in self.providers
        )

    def __repr__(self) -> str:
        return f"FailoverProvider([{', '.join(repr(p) for p in self.providers)}])"

    # ------------------------------------------------------------------ universe

    def universe(self, as_of: date | None = None) -> list[str]:
        """Symbols to fetch: the configured list, else the listing members' union, sorted.

        Raises
        ------
        ProviderError
            If no symbol is configured and no member can list a universe.
        """
        if self.explicit_symbols:
            return list(self.explicit_symbols)
        listing = [p for p in self.providers if lists_universe(p)]
        if not listing:
            raise ProviderError(
                f"provider(s) {self.name} cannot list a universe: set QUANT_PROVIDER_SYMBOLS"
            )
        names: set[str] = set()
        for provider in listing:
            names.update(provider.symbols(as_of=as_of)["symbol"].tolist())
        return sorted(names)

    # ------------------------------------------------------------------ bars

    def fetch_bars(
        self, start: date, end: date, symbols: Sequence[str] | None = None
    ) -> SourcedBars:
        """Bars in ``[start, end]`` with the provider of each symbol.

        Parameters
        ----------
        start, end : datetime.date
            Both inclusive.
        symbols : sequence of str, optional
            Defaults to :meth:`universe` as of ``end``.

        Raises
        ------
        ProviderError
            If a provider failed and no later provider delivered the symbols
            it was asked for.
        """
        wanted = list(dict.fromkeys(symbols if symbols is not None else self.universe(end)))
        remaining = list(wanted)
        frames: list[pd.DataFrame] = []
        served: dict[str, list[str]] = {}
        tried: dict[str, list[str]] = {}
        errors: dict[str, str] = {}
        failed_for: set[str] = set()
        for provider in self.providers:
            if not remaining:
                break
            if lists_universe(provider):
                known = set(provider.symbols()["symbol"].tolist())
                ask = [s for s in remaining if s in known]
            else:
                ask = list(remaining)
            if not ask:
                continue
            try:
                frame = provider.bars(start, end, ask)
            except ProviderError as exc:
                errors[provider.name] = str(exc)
                failed_for.update(ask)
                for symbol in ask:
                    tried.setdefault(symbol, []).append(provider.name)
                continue
            frame = frame.loc[frame["symbol"].isin(ask)]
            got = set(frame["symbol"].unique().tolist())
            for symbol in ask:
                if symbol not in got:
                    tried.setdefault(symbol, []).append(provider.name)
            if got:
                served[provider.name] = [s for s in ask if s in got]
                frames.append(frame.assign(provider=provider.name))
            remaining = [s for s in remaining if s not in got]
        lost = [s for s in remaining if s in failed_for]
        if lost:
            detail = "; ".join(f"{name}: {msg}" for name, msg in errors.items())
            raise ProviderError(
                f"no provider of {self.name} delivered {len(lost)} symbol(s) "
                f"(e.g. {', '.join(lost[:5])}) after failures: {detail}"
            )
        if frames:
            bars = pd.concat(frames, ignore_index=True)
        else:
            bars = empty_frame({**BAR_DTYPES, "provider": "str"})
        served_symbols = {s for names in served.values() for s in names}
        skipped = {s: tried[s] for s in wanted if s in served_symbols and s in tried}
        return SourcedBars(
            bars=bars,
            served=served,
            skipped=skipped,
            unserved=remaining,
            errors=errors,
        )

    # ------------------------------------------------------------------ protocol

    def bars(self, start: date, end: date, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Bars of :meth:`fetch_bars` without the provider column, sorted by (date, symbol)."""
        bars = self.fetch_bars(start, end, symbols).bars[list(BAR_COLUMNS)]
        return bars.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)

    def reference_by_provider(
        self, as_of: date | None = None
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        """Every member's reference data, with a ``provider`` column, and members' errors.

        A member raising :class:`ProviderError` is skipped and its error
        returned, unless it is the only member (then the error propagates).
        """
        return self._from_each(lambda provider: provider.symbols(as_of=as_of), SYMBOL_DTYPES)

    def actions_by_provider(self, start: date, end: date) -> tuple[pd.DataFrame, dict[str, str]]:
        """Every member's corporate actions in ``[start, end]`` with a ``provider`` column.

        Listing members report all they know; the others are asked for the
        chain's universe. A member raising :class:`ProviderError` is
        skipped and its error returned, unless it is the only member.
        """
        universe: dict[date, list[str]] = {}  # the chain's, asked for once, when needed

        def actions(provider: MarketDataProvider) -> pd.DataFrame:
            if lists_universe(provider):
                return provider.corporate_actions(start, end)
            if end not in universe:
                universe[end] = self.universe(end)
            return provider.corporate_actions(start, end, universe[end])

        return self._from_each(actions, ACTION_DTYPES)

    def _from_each(
        self, ask: Callable[[MarketDataProvider], pd.DataFrame], dtypes: Mapping[str, str]
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        """What ``ask`` gets from every member, with a ``provider`` column, and the errors
        of the members that raised :class:`ProviderError` (skipped, unless the chain has
        only that member: then the error propagates). Empty with ``dtypes`` when none
        answered."""
        frames, errors = [], {}
        for provider in self.providers:
            try:
                frame = ask(provider)
            except ProviderError as exc:
                if len(self.providers) == 1:
                    raise
                errors[provider.name] = str(exc)
                continue
            frames.append(frame.assign(provider=provider.name))
        if not frames:
            return empty_frame({**dtypes, "provider": "str"}), errors
        return pd.concat(frames, ignore_index=True), errors

    def symbols(self, as_of: date | None = None) -> pd.DataFrame:
        """Reference data, each symbol from the first member that has it."""
        frame, _ = self.reference_by_provider(as_of)
        frame = frame.drop_duplicates("symbol", keep="first")[list(SYMBOL_COLUMNS)]
        return frame.sort_values("symbol", kind="stable").reset_index(drop=True)

    def corporate_actions(
        self, start: date, end: date, symbols: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Corporate actions, each symbol's from the first member that reports any for it."""
        frame, _ = self.actions_by_provider(start, end)
        first = frame.drop_duplicates("symbol", keep="first").set_index("symbol")["provider"]
        frame = frame.loc[frame["provider"].to_numpy() == frame["symbol"].map(first).to_numpy()]
        if symbols is not None:
            frame = frame.loc[frame["symbol"].isin(list(symbols))]
        frame = frame[list(ACTION_COLUMNS)].sort_values(["ex_date", "symbol"], kind="stable")
        return frame.reset_index(drop=True)
