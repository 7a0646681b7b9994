"""What a forecast starts from: the replay of a ledger up to ``as_of``, reduced to arrays.

Per license that is covered on ``as_of`` or whose last term end is not decided yet: that
end, the edition, and its evidence (term ends continued, churns) for the posterior of its
churn chance. Per edition: the fitted sBG model and the pooled rate; the decided
continuations of history (offset, gap, period added, outcome) to draw from; the deferred
balance and the trailing arrival rate. Only what the replay shows by ``as_of`` is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog
from .forecast import CONTINUED_OUTCOMES, MIN_HISTORY
from .ledger import Ledger
from .retention import RetentionError, SBGFit, fit_sbg_licenses, leak_weight, license_lifetimes
from .vocab import REN, SUB, Edition, Outcome, Source

#: Days after a term end when its fate is decided (rules §6, ``churn_horizon_days``).
CHURN_HORIZON = 365
HISTORY_MAX = 4096
_CONT_CODES = np.array([o.code for o in CONTINUED_OUTCOMES])


@dataclass(frozen=True, slots=True)
class History:
    """Decided continuations of one edition, sorted by offset (days from the end to the activation)."""

    off: np.ndarray
    gap: np.ndarray  #: days from the end to the start of the period the continuation added
    length: np.ndarray  #: days of that period
    outcome: np.ndarray  #: index into CONTINUED_OUTCOMES


@dataclass(frozen=True)
class State:
    """The forecast's starting point (see the module docstring)."""

    as_of_day: int
    license_ids: np.ndarray  #: each base license's id
    E: np.ndarray  #: each base license's last term end (day; exclusive end of its coverage)
    edition: np.ndarray
    n_cont: np.ndarray  #: term ends it continued (plus its tenure at entry, for a legacy license)
    n_churn: np.ndarray  #: term ends it churned at (and came back)
    rec_start: np.ndarray  #: periods running after as_of: start, end, kopecks recognised a day
    rec_end: np.ndarray
    rec_rate: np.ndarray
    fits: dict[int, SBGFit | None]  #: the pure sBG per edition code
    leaky: dict[int, SBGFit | None]  #: the sBG with a leak per edition code
    leak_weight: dict[int, float]  #: Akaike weight of the leak model (the runs that use it)
    pooled: np.ndarray  #: pooled continuation rate per edition code
    decided: np.ndarray  #: decided term ends per edition code
    history: dict[int, History]
    arrivals: float
    arrivals_rule: str
    arrivals_n: int | None  #: the arrivals a trailing rate was counted from (None: a given rate)
    arrival_share: np.ndarray  #: share of each edition among new licenses
    deferred_kop: int  #: the unearned part of those periods after as_of (catalog prices)
    notes: list[str] = field(default_factory=list)

    def continue_mean(self) -> np.ndarray:
        """Each base license's posterior mean chance to continue at its next term end:
        ``(beta + continuations) / (alpha + beta + continuations + churns)`` under its edition's
        pure sBG, averaged with the same under the sBG with a leak (``1 - leak`` times a mixture
        over how many churns ``theta`` caused) by the leak model's Akaike weight; the pooled rate
        where there is no fit. (For what-if runs on the simulator: divided
        by ``p_continue`` this is the simulator's ``propensity``.)"""
        from .retention import posterior_continue

        q = self.pooled[self.edition].astype(np.float64)
        for e, f in self.fits.items():
            m = self.edition == e
            if f is not None and m.any():
                q[m] = posterior_continue(f.alpha, f.beta, 0.0, self.n_cont[m], self.n_churn[m])
                g, w = self.leaky.get(e), self.leak_weight.get(e, 0.0)
                if g is not None and w > 0:
                    leaky = posterior_continue(g.alpha, g.beta, g.leak, self.n_cont[m], self.n_churn[m])
                    q[m] = (1 - w) * q[m] + w * leaky
        return q

    def _leak_columns(self, e: int) -> dict[str, float]:
        g = self.leaky.get(e) if self.fits.get(e) is not None else None
        return {"leak_alpha": g.alpha if g else np.nan, "leak_beta": g.beta if g else np.nan,
                "leak": g.leak if g else np.nan, "leak_se": g.leak_se if g else np.nan,
                "leak_weight": self.leak_weight.get(e, 0.0) if g else np.nan}

    def retention_table(self) -> pd.DataFrame:
        """Per edition: the sBG fit (``alpha, beta`` with standard errors, licenses), the fit with a
        leak (``leak_alpha, leak_beta, leak, leak_se``) and its Akaike weight ``leak_weight``, the
        mean continuation of a new license (pure sBG), and the pooled rate over decided term ends."""
        rows = []
        for ed in Edition:
            f = self.fits.get(ed.code)
            rows.append({
                "edition": ed.value,
                "alpha": f.alpha if f else np.nan, "alpha_se": f.alpha_se if f else np.nan,
                "beta": f.beta if f else np.nan, "beta_se": f.beta_se if f else np.nan,
                **self._leak_columns(ed.code),
                "licenses": f.n if f else 0.0,
                "new_license_continuation": f.mean_continue if f else np.nan,
                "pooled_continuation": self.pooled[ed.code], "decided_term_ends": int(self.decided[ed.code]),
            })
        return pd.DataFrame(rows)


def _days(col: pd.Series) -> np.ndarray:
    return col.to_numpy().astype("datetime64[D]").astype(np.int64)


def observe(ledger: Ledger, cat: Catalog, as_of_day: int | None, arrivals: Any) -> State:
    """The state on ``as_of_day`` (default: the ledger's last event day)."""
    from .metrics import expiry_outcomes
    from .replay import replay

    rep = replay(ledger, cat, None if as_of_day is None else pd.Timestamp(as_of_day, unit="D"))
    day = int(_days(pd.Series([rep.as_of]))[0])
    out = expiry_outcomes(rep, rep.as_of, CHURN_HORIZON)
    notes: list[str] = []
    ends = _Ends.of(out)
    lt = license_lifetimes(out, entry_tenure(rep), as_of=rep.as_of, churn_horizon_days=CHURN_HORIZON)
    fits, leaky = fit_editions(lt, notes), fit_editions(lt, notes, leak=True)
    weights = {e: leak_weight(f, leaky[e]) if f is not None and leaky.get(e) is not None else 0.0
               for e, f in fits.items()}
    pooled, decided = _pooled(ends, day)
    history = _histories(ends, day, notes)
    base = _base(ends, rep, cat, day)
    rate, rule, share, n_arr = _arrivals(rep, day, arrivals)
    if rate == 0 and arrivals == "trailing":
        notes.append(f"no new license in the 12 months to {pd.Timestamp(day, unit='D').date()}: no arrivals are forecast")
    return State(as_of_day=day, **base, fits=fits, leaky=leaky, leak_weight=weights,
                 pooled=pooled, decided=decided, history=history,
                 arrivals=rate, arrivals_rule=rule, arrivals_n=n_arr, arrival_share=share, notes=notes)


@dataclass(frozen=True, slots=True)
class _Ends:
    """Term-end rows (by license, in time order) as arrays."""

    lic: np.ndarray
    edition: np.ndarray
    end: np.ndarray
    outcome: np.ndarray  #: Outcome codes
    offset: np.ndarray
    gap: np.ndarray
    length: np.ndarray  #: days of the next period (-1: none)
    is_last: np.ndarray
    ids: np.ndarray  #: license id of each license number

    @classmethod
    def of(cls, out: pd.DataFrame) -> _Ends:
        n = len(out)
        lic, ids = pd.factorize(out["license_id"]) if n else (np.empty(0, np.int64), pd.Index([]))
        end = _days(out["end"]) if n else np.empty(0, np.int64)
        has_next = np.zeros(n, bool)
        has_next[:-1] = lic[1:] == lic[:-1]
        nxt_start = np.where(out["next_start"].notna().to_numpy(), _days(out["next_start"].fillna(pd.Timestamp(0))), 0)
        length = np.full(n, -1, np.int64)
        length[:-1] = np.where(has_next[:-1], end[1:] - nxt_start[:-1], -1)
        return cls(lic=lic, edition=out["edition"].cat.codes.to_numpy().astype(np.int64), end=end,
                   outcome=out["outcome"].cat.codes.to_numpy().astype(np.int64),
                   offset=out["offset_days"].fillna(0).to_numpy().astype(np.int64),
                   gap=np.where(has_next, nxt_start - end, 0), length=length, is_last=~has_next,
                   ids=np.asarray(ids, dtype=object))


def entry_tenure(rep: Any) -> pd.Series:
    """Tenure at entry of legacy licenses: whole terms their legacy period covered, less one."""
    per = rep.periods
    leg = per[per["source"].astype("str") == Source.LEGACY.value]
    years = (_days(leg["end"]) - _days(leg["start"])) / 365.25
    tenure = pd.Series(np.maximum(np.rint(years).astype(np.int64) - 1, 0), index=leg["license_id"].to_numpy())
    return tenure.groupby(level=0).max()


def fit_retention(out: pd.DataFrame, entry: pd.Series, as_of: pd.Timestamp, notes: list[str], *,
                  leak: bool = False) -> dict[int, SBGFit | None]:
    """The sBG model per edition (with a leak if ``leak``), from each license's entry tenure, last
    decided tenure and fate."""
    return fit_editions(license_lifetimes(out, entry, as_of=as_of, churn_horizon_days=CHURN_HORIZON), notes, leak=leak)


def fit_editions(lt: pd.DataFrame, notes: list[str], *, leak: bool = False) -> dict[int, SBGFit | None]:
    """:func:`fit_retention` from :func:`~subs_model.retention.license_lifetimes`."""
    fits: dict[int, SBGFit | None] = {}
    for ed in Edition:
        m = (lt["edition"] == ed.value).to_numpy()
        fits[ed.code] = None
        if not m.any():
            continue
        try:
            fits[ed.code] = fit_sbg_licenses(lt["entry"][m], lt["last"][m], lt["churned"][m], leak=leak)
        except RetentionError as exc:
            if not leak:
                notes.append(f"{ed.value}: no sBG fit ({exc}); its licenses continue at the pooled rate")
    return fits


def _pooled(ends: _Ends, day: int) -> tuple[np.ndarray, np.ndarray]:
    """Continued / decided term ends per edition (ends at least ``CHURN_HORIZON`` days old)."""
    n_ed = len(Edition)
    dec = (ends.end + CHURN_HORIZON <= day) & (ends.edition >= 0)
    cont = dec & np.isin(ends.outcome, _CONT_CODES)
    n_dec = np.bincount(ends.edition[dec], minlength=n_ed)
    n_cont = np.bincount(ends.edition[cont], minlength=n_ed)
    return np.where(n_dec > 0, n_cont / np.maximum(n_dec, 1), 0.0), n_dec


def _histories(ends: _Ends, day: int, notes: list[str]) -> dict[int, History]:
    """Decided continuations per edition (all editions together where one has too few)."""
    ok = (ends.end + CHURN_HORIZON <= day) & np.isin(ends.outcome, _CONT_CODES) & (ends.length > 0)
    out_idx = np.searchsorted(_CONT_CODES, ends.outcome)  # CONTINUED_OUTCOMES are in code order
    hist = {}
    for ed in Edition:
        m = ok & (ends.edition == ed.code)
        if m.sum() < MIN_HISTORY:
            m = ok
        o = np.argsort(ends.offset[m], kind="stable")
        # A stratified sample (every k-th by offset) of at most HISTORY_MAX continuations: the same
        # distribution to a fraction of a percent, and small enough for the walk's cache.
        o = o[np.unique(np.linspace(0, len(o) - 1, min(len(o), HISTORY_MAX)).round().astype(np.int64))] if len(o) else o
        hist[ed.code] = History(off=ends.offset[m][o], gap=ends.gap[m][o], length=ends.length[m][o],
                                outcome=out_idx[m][o])
    if not ok.any():
        notes.append("no decided continuation in the history: nobody is forecast to continue")
    return hist


def _base(ends: _Ends, rep: Any, cat: Catalog, day: int) -> dict[str, Any]:
    """Licenses whose last term end is open on ``day``, their evidence, and the unearned coverage."""
    n_lic = int(ends.lic.max()) + 1 if len(ends.lic) else 0
    is_cont = np.isin(ends.outcome, _CONT_CODES)
    n_cont = np.bincount(ends.lic[is_cont], minlength=n_lic)
    n_churn = np.bincount(ends.lic[ends.outcome == Outcome.CHURNED.code], minlength=n_lic)
    last = np.flatnonzero(ends.is_last & (ends.outcome == Outcome.OPEN.code) & (ends.edition >= 0))
    lic = ends.lic[last]
    extra = entry_tenure(rep).reindex(ends.ids[lic]).fillna(0).to_numpy().astype(np.int64)
    return {"license_ids": ends.ids[lic], "E": ends.end[last], "edition": ends.edition[last], "n_cont": n_cont[lic] + extra, "n_churn": n_churn[lic],
            **_unearned(rep, cat, day)}


def _unearned(rep: Any, cat: Catalog, day: int) -> dict[str, Any]:
    """Periods still running after ``day`` (including ones renewed early, not begun yet): each one's
    payment at catalog prices (a renewal's; a subscription's or an upgraded renewal's, which together
    cost a subscription; nothing for a legacy period), released evenly over its days."""
    per = rep.periods
    start, end = _days(per["start"]), _days(per["end"])
    run = np.flatnonzero(end > day)
    src = per["source"].astype("str").to_numpy()[run]
    lic_ed = rep.ledger.licenses.set_index(rep.ledger.licenses["license_id"].astype("str"))["edition"].astype("str")
    ed_names = pd.Categorical(lic_ed.reindex(per["license_id"].astype("str").to_numpy()[run]).to_numpy(),
                              categories=[e.value for e in Edition])
    ed = ed_names.codes.astype(np.int64)
    ok = (ed >= 0) & (src != Source.LEGACY.value)
    sku = np.where(src == Source.RENEWAL.value, REN, SUB)
    price = np.where(ok, cat.price_table()[cat.version_index(start[run]), np.maximum(ed, 0), sku], 0).astype(float)
    s, e = start[run], end[run]
    rate = price / np.maximum(e - s, 1)
    unearned = rate * (e - np.maximum(s, day + 1))
    return {"rec_start": s, "rec_end": e, "rec_rate": rate, "deferred_kop": round(float(unearned.sum()))}


def _arrivals(rep: Any, day: int, arrivals: Any) -> tuple[float, str, np.ndarray, int | None]:
    """New licenses a month and the rule that gave it; the edition mix of new licenses."""
    per = rep.periods
    first = per.groupby(per["license_id"].to_numpy(), sort=False).agg(start=("start", "min"))
    lic_ed = rep.prepared.license_edition
    ids = pd.Index(rep.prepared.license_ids.to_pandas()) if rep.prepared.license_ids is not None else pd.Index([])
    f_day = _days(first["start"]) if len(first) else np.empty(0, np.int64)
    ed = lic_ed[ids.get_indexer(first.index)] if len(first) else np.empty(0, np.int64)
    recent = (f_day > day - 365) & (f_day <= day)
    n_ed = len(Edition)
    pick = recent if recent.any() else np.ones(len(f_day), bool)
    counts = np.bincount(ed[pick & (ed >= 0)], minlength=n_ed).astype(float)
    share = counts / counts.sum() if counts.sum() > 0 else np.full(n_ed, 1.0 / n_ed)
    lo = pd.Timestamp(day - 364, unit="D").date().isoformat()
    hi = pd.Timestamp(day, unit="D").date().isoformat()
    if arrivals == "trailing":
        n = int(recent.sum())
        return n / 12.0, f"trailing 12 months: {n:,} licenses first covered {lo} … {hi}, / 12", share, n
    if arrivals == "none":
        return 0.0, "none: the base only", share, None
    return float(arrivals), "given", share, None
