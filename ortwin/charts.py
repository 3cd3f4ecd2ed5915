"""Altair charts of results, shared by the what-if app and the HTML report.

Each function takes the tidy frames of :mod:`ortwin.compare` and :mod:`ortwin.outcomes` and returns
an Altair chart with its data inline (no URL), so the same spec renders in Streamlit, in a
self-contained HTML file and as a PNG.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from ortwin.outcomes import DayTrace
from twin.kpis import kpi_def

_MONDAY = pd.Timestamp("2024-01-01")  # a Monday: day 0 of a horizon, for time axes
KIND_COLOURS = {"pacu_hold": "#111111", "turnover": "#c7c7c7", "down": "#7f7f7f"}


def _clock(minutes: pd.Series) -> pd.Series:
    return _MONDAY + pd.to_timedelta(minutes.astype(float), unit="min")


def _arm(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(arm=df["scenario"].astype(str) + " · " + df["policy"].astype(str))


RAW_LIMIT = 1000
"""Above this many replications in a chart, distributions are drawn from summaries (box-plot
statistics, ECDF at 500 quantiles) so that a report of 10,000 replications stays small."""


def _box_stats(data: pd.DataFrame, kpi: str) -> pd.DataFrame:
    g = data.groupby(["scenario", "policy"], sort=False)[kpi]
    return g.describe()[["count", "min", "25%", "50%", "75%", "max"]].rename(
        columns={"25%": "q1", "50%": "median", "75%": "q3"}).reset_index()


def kpi_distribution(replications: pd.DataFrame, kpi: str, kind: str = "box") -> alt.Chart:
    """Distribution of one KPI over replications per scenario and policy: a box plot
    (``kind="box"``, whiskers to min/max) or an ECDF (``kind="ecdf"``)."""
    d = kpi_def(kpi)
    title = f"{d.label} ({d.unit})" if d.unit else d.label
    data = _arm(replications[["scenario", "policy", "rep", kpi]].dropna())
    if len(data) > RAW_LIMIT and kind == "box":
        stats = _box_stats(data, kpi)
        enc = {"x": alt.X("policy:N", title=None, sort=None),
               "color": alt.Color("policy:N", legend=None)}
        tip = ["policy:N", alt.Tooltip("count:Q", title="replications"),
               *(alt.Tooltip(f"{c}:Q", format=",.3~f") for c in ("min", "q1", "median", "q3",
                                                                  "max"))]
        whisker = alt.Chart().mark_rule().encode(
            y=alt.Y("min:Q", title=title, scale=alt.Scale(zero=False)), y2="max:Q", **enc)
        box = alt.Chart().mark_bar(size=28).encode(y="q1:Q", y2="q3:Q", tooltip=tip, **enc)
        mid = alt.Chart().mark_tick(color="white", size=28).encode(y="median:Q", x=enc["x"])
        return alt.layer(whisker, box, mid, data=stats).properties(
            width=max(120, 70 * stats["policy"].nunique()), height=220).facet(
            column=alt.Column("scenario:N", title=None)).properties(title=title)
    if len(data) > RAW_LIMIT:  # ECDF from 500 quantiles per arm
        qs = [i / 499 for i in range(500)]
        data = pd.concat([g[kpi].quantile(qs).rename(kpi).to_frame().assign(arm=arm)
                          for arm, g in data.groupby("arm", sort=False)], ignore_index=True)
    if kind == "ecdf":
        return alt.Chart(data, title=title).transform_window(
            ecdf="cume_dist()", sort=[{"field": kpi}], groupby=["arm"],
        ).mark_line(interpolate="step-after").encode(
            x=alt.X(f"{kpi}:Q", title=title),
            y=alt.Y("ecdf:Q", title="share of replications at or below"),
            color=alt.Color("arm:N", title="scenario · policy"),
            tooltip=["arm:N", alt.Tooltip(f"{kpi}:Q", format=",.3~f"),
                     alt.Tooltip("ecdf:Q", format=".2f")],
        ).properties(width=420, height=220)
    return alt.Chart(data, title=title).mark_boxplot(extent="min-max", size=28).encode(
        x=alt.X("policy:N", title=None, sort=None),
        y=alt.Y(f"{kpi}:Q", title=title, scale=alt.Scale(zero=False)),
        color=alt.Color("policy:N", legend=None),
        column=alt.Column("scenario:N", title=None),
    ).properties(width=max(120, 70 * data["policy"].nunique()), height=220)


def exceedance_chart(curves: pd.DataFrame, tails: pd.DataFrame | None = None,
                     title: str = "Daily suite overtime: chance of exceeding") -> alt.Chart:
    """Exceedance curves (``x`` vs ``p_exceed``) per scenario and policy, with a rule at each
    arm's P90 when ``tails`` (:func:`ortwin.outcomes.tail_table`) is given."""
    data = _arm(curves)
    base = alt.Chart(data, title=title).mark_line(interpolate="step-after").encode(
        x=alt.X("x:Q", title="overtime minutes in a day (all rooms)",
                scale=alt.Scale(domainMin=0)),
        y=alt.Y("p_exceed:Q", title="P(daily overtime > x)", axis=alt.Axis(format="%")),
        color=alt.Color("arm:N", title="scenario · policy"),
        tooltip=["arm:N", alt.Tooltip("x:Q", format=",.0f", title="minutes"),
                 alt.Tooltip("p_exceed:Q", format=".1%", title="P(exceed)")],
    )
    layers = [base]
    if tails is not None and len(tails):
        rules = alt.Chart(_arm(tails)).mark_rule(strokeDash=[4, 3]).encode(
            x="p90:Q", color=alt.Color("arm:N"),
            tooltip=["arm:N", alt.Tooltip("p90:Q", format=",.0f", title="P90"),
                     alt.Tooltip("p95:Q", format=",.0f", title="P95"),
                     alt.Tooltip("cvar95:Q", format=",.0f", title="CVaR95")])
        layers.append(rules)
    return alt.layer(*layers).properties(width=520, height=260)


def difference_chart(differences: pd.DataFrame, kpis: list[str]) -> alt.Chart:
    """Paired differences from the reference policy with their 95% intervals, one row per KPI
    and policy (a forest plot), coloured by verdict."""
    d = differences[differences["kpi"].isin(kpis)].copy()
    d["label"] = [f"{kpi_def(k).label} ({kpi_def(k).unit})" for k in d["kpi"]]
    base = alt.Chart(d).encode(
        y=alt.Y("policy:N", title=None),
        color=alt.Color("verdict:N", scale=alt.Scale(
            domain=["better", "worse", "inconclusive"], range=["#2ca02c", "#d62728", "#7f7f7f"])),
    )
    bars = base.mark_rule(strokeWidth=2).encode(x=alt.X("ci_low:Q", title="difference"),
                                                x2="ci_high:Q")
    pts = base.mark_point(filled=True, size=50).encode(
        x="mean_diff:Q",
        tooltip=["policy:N", "label:N", alt.Tooltip("mean_diff:Q", format=",.3~f"),
                 alt.Tooltip("ci_low:Q", format=",.3~f"), alt.Tooltip("ci_high:Q", format=",.3~f"),
                 "verdict:N"])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="black").encode(x="x:Q")
    return alt.layer(bars, pts, zero, data=d).properties(width=260, height=60).facet(
        facet=alt.Facet("label:N", title=None), columns=3,
    ).resolve_scale(x="independent")


def fairness_chart(fair: pd.DataFrame, measure: str = "cancellation_rate") -> alt.Chart:
    """One fairness measure by service, a bar per policy (faceted by scenario)."""
    titles = {"cancellation_rate": "cancellation rate", "prime_start_share":
              "share of starts in prime time", "overtime_share": "share of the suite's overtime",
              "in_room_share": "share of in-room time"}
    return alt.Chart(fair, title=f"By service: {titles.get(measure, measure)}").mark_bar().encode(
        x=alt.X("service:N", title=None),
        xOffset="policy:N",
        y=alt.Y(f"{measure}:Q", title=titles.get(measure, measure), axis=alt.Axis(format="%")),
        color=alt.Color("policy:N"),
        column=alt.Column("scenario:N", title=None),
        tooltip=["scenario:N", "policy:N", "service:N",
                 alt.Tooltip(f"{measure}:Q", format=".1%")],
    ).properties(width=360, height=200)


def gantt_chart(trace: DayTrace) -> alt.VConcatChart:
    """The day by room (cases coloured by service; PACU holds, turnovers and downtime in grey
    or red; staffed windows as a light band) above the PACU's occupancy and beds."""
    iv = trace.intervals.copy()
    iv["t0"], iv["t1"] = _clock(iv["start"]), _clock(iv["end"])
    iv["label"] = iv["service"].where(iv["kind"] == "case", iv["kind"]).fillna(iv["kind"])
    iv["minutes"] = (iv["end"] - iv["start"]).round(0)
    iv = iv.fillna({"case_id": "", "procedure": "", "surgeon": ""})
    rooms = sorted(set(iv["room"]) | set(trace.windows["room"]),
                   key=lambda r: (len(str(r)), str(r)))
    win = trace.windows.assign(t0=_clock(trace.windows["start"]), t1=_clock(trace.windows["end"]))
    y = alt.Y("room:N", sort=rooms, title=None)
    band = alt.Chart(win).mark_bar(color="#eef3fb", height=22).encode(
        y=y, x=alt.X("t0:T", title=None, axis=alt.Axis(format="%H:%M")), x2="t1:T")
    cases = iv[iv["kind"] == "case"]
    other = iv[iv["kind"] != "case"]
    bars = alt.Chart(cases).mark_bar(height=16, stroke="white", strokeWidth=0.5).encode(
        y=y, x="t0:T", x2="t1:T",
        color=alt.Color("label:N", title="service"),
        tooltip=["room:N", "case_id:N", "procedure:N", "surgeon:N", "is_addon:N",
                 alt.Tooltip("t0:T", format="%H:%M", title="wheels in"),
                 alt.Tooltip("t1:T", format="%H:%M", title="wheels out"),
                 alt.Tooltip("minutes:Q", title="minutes")])
    extra = alt.Chart(other).mark_bar(height=8, opacity=0.9).encode(
        y=y, x="t0:T", x2="t1:T",
        color=alt.Color("kind:N", title="other", scale=alt.Scale(
            domain=list(KIND_COLOURS), range=list(KIND_COLOURS.values()))),
        tooltip=["room:N", "kind:N", "case_id:N",
                 alt.Tooltip("t0:T", format="%H:%M", title="from"),
                 alt.Tooltip("t1:T", format="%H:%M", title="to"),
                 alt.Tooltip("minutes:Q", title="minutes")])
    title = (f"{trace.scenario} · {trace.policy}: replication {trace.rep}, "
             f"day {trace.day} ({['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][trace.day % 7]})")
    top = alt.layer(band, bars, extra).resolve_scale(color="independent").properties(
        width=760, height=max(160, 26 * len(rooms)), title=title)
    p = trace.pacu.assign(t=_clock(trace.pacu["time"]))
    occ = alt.Chart(p).mark_area(interpolate="step-after", opacity=0.6, color="#9467bd").encode(
        x=alt.X("t:T", title="time of day", axis=alt.Axis(format="%H:%M")),
        y=alt.Y("occupied:Q", title="PACU beds"),
        tooltip=[alt.Tooltip("t:T", format="%H:%M"), "occupied:Q", "capacity:Q"])
    cap = alt.Chart(p).mark_line(interpolate="step-after", color="black", strokeDash=[4, 2]
                                 ).encode(x="t:T", y="capacity:Q")
    bottom = alt.layer(occ, cap).properties(width=760, height=120,
                                           title="PACU occupancy (area) and open beds (dashed)")
    return alt.vconcat(top, bottom).resolve_scale(x="shared")
