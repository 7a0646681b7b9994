"""The forecast report's page (notebook ``06-forecast``): the forecast, a backtest and their figures.

The notebook stays thin: it calls :func:`forecast_page` once and shows what it holds.
Notes are Markdown built from numbers and dates only; anything from the data goes through
:func:`subs_model.plots.safe_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .backtest import Backtest, backtest
from .catalog import Catalog
from .forecast import Forecast, forecast, retention_curves
from .forecast_plots import fig_backtest, fig_outlook, fig_retention_by_tenure
from .plots import safe_text

__all__ = ["ForecastPage", "forecast_page"]


@dataclass(frozen=True)
class ForecastPage:
    """What the forecast report shows: the forecast, the backtest, figures and Markdown notes."""

    forecast: Forecast
    backtest: Backtest | None
    lang: str

    def figure(self, name: str) -> Any:
        """``"active"``, ``"bookings_rub"``, ``"recognised_rub"`` (outlook), ``"backtest"`` or ``"retention"``;
        numbers and dates in the page's language (:func:`subs_model.chart_formats.localise`)."""
        from .chart_formats import localise

        if name == "backtest":
            fig = fig_backtest(self.backtest.table if self.backtest else pd.DataFrame(columns=["metric"]), "active", self.lang)
        elif name == "retention":
            fig = fig_retention_by_tenure(retention_curves(self.forecast), self.lang)
        else:
            fig = fig_outlook(self.forecast.table, name, self.lang)
        return localise(fig, self.lang)

    @property
    def summary(self) -> str:
        """The forecast's choices in the page's language, one Markdown bullet each."""
        return "\n".join(f"- {safe_text(line, markdown=True)}" for line in self.forecast.description_in(self.lang).splitlines())

    @property
    def backtest_summary(self) -> str:
        """The backtest's MAPE and coverage beside the pooled baseline in the page's language, as Markdown bullets."""
        if self.backtest is None:
            none = "нет прошлых дат для проверки" if self.lang == "ru" else "no past cutoff to check against"
            return f"- {none}"
        return "\n".join(f"- {safe_text(line, markdown=True)}" for line in self.backtest.description_in(self.lang).splitlines())

    def show(self, name: str) -> Any:
        """:meth:`table` for people: labels in the page's language, formats, a download beside the report."""
        from .tables import auto_cols, people_table

        df = self.table(name)
        return people_table(df, auto_cols(df), self.lang, name=f"forecast-{name}")

    def table(self, name: str) -> pd.DataFrame:
        """``"retention"`` (the fits with standard errors) or ``"backtest"`` (the summary)."""
        if name == "retention":
            return self.forecast.retention.round(4)
        return self.backtest.summary.round(4) if self.backtest else pd.DataFrame()


def forecast_page(*, data: str, catalog: str = "", as_of: str = "", months: int = 24, runs: int = 100, seed: int = 0,
                  arrivals: str = "trailing", cutoffs: str = "", backtest_months: int = 12, lang: str = "ru") -> ForecastPage:
    """Read the ledger, forecast from ``as_of`` and backtest from ``cutoffs`` (comma-separated days;
    empty: 12 and 24 months before ``as_of``, month ends)."""
    from pathlib import Path

    from .report_cache import read_ledger  # the run's kept ledger in a report kernel, else io.read_ledger
    from .replay import replay

    led = read_ledger(data)
    cat = Catalog.from_yaml(catalog) if catalog and Path(catalog).exists() else Catalog.default()
    day = pd.Timestamp(as_of) if as_of else replay(led, cat).as_of
    arr: str | float = arrivals if arrivals in ("trailing", "none") else float(arrivals)
    fc = forecast(led, cat, day, months=months, runs=runs, seed=seed, arrivals=arr)
    if cutoffs.strip():
        cuts = [c.strip() for c in cutoffs.split(",") if c.strip()]
    else:
        cuts = [(day - pd.DateOffset(months=k) + pd.offsets.MonthEnd(0)).date().isoformat() for k in (24, 12)]
    first = replay(led, cat, day).periods["start"].min() if len(led.orders) else day
    cuts = [c for c in cuts if pd.Timestamp(first) + pd.DateOffset(years=2) <= pd.Timestamp(c) < day]
    bt = backtest(led, cat, cuts, months=backtest_months, as_of=day, runs=runs, seed=seed, arrivals=arr) if cuts else None
    return ForecastPage(forecast=fc, backtest=bt, lang=lang)
