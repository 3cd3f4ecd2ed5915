"""The OR status board's charts (Altair): PACU by hour, and drill-down bars with the
literature's benchmark lines (:data:`ortwin.board.BENCHMARKS`)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ortwin.board import BENCHMARKS, MEASURES
from twin.dayplan import DayPlan


def pacu_chart(pacu: pd.DataFrame, plan: DayPlan) -> alt.VConcatChart:
    """PACU patients by hour (mean, P90, open beds) above the chance of a hold in an OR."""
    t = pd.Timestamp(plan.date) + pd.to_timedelta(pacu["hour"] - plan.midnight, unit="min")
    series = {"expected (mean)": pacu["occupancy_mean"], "P90": pacu["occupancy_p90"],
              "open beds": pacu["beds"]}
    long = pd.concat([pd.DataFrame({"time": t, "series": k, "patients": v.astype(float)})
                      for k, v in series.items()], ignore_index=True)
    x = alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M"))
    occ = alt.Chart(long, title="PACU patients by hour").mark_line(point=True).encode(
        x=x, y=alt.Y("patients:Q", title="patients in PACU"),
        color=alt.Color("series:N", title=None, scale=alt.Scale(
            domain=list(series), range=["#1f77b4", "#9ecae1", "#d62728"])),
        strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(
            domain=list(series), range=[[1, 0], [4, 3], [2, 2]])),
        tooltip=[alt.Tooltip("time:T", format="%H:%M"), "series:N",
                 alt.Tooltip("patients:Q", format=".1f")],
    ).properties(height=200, width="container")
    hold = alt.Chart(pd.DataFrame({"time": t, "p_hold": pacu["p_hold"].astype(float)})).mark_bar(
        color="#ff7f0e", opacity=0.8).encode(
        x=x, y=alt.Y("p_hold:Q", title="P(hold in OR)", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("time:T", format="%H:%M"), alt.Tooltip("p_hold:Q", format=".2f")],
    ).properties(height=80, width="container")
    return alt.vconcat(occ, hold)


def drill_chart(table: pd.DataFrame, by: str, measure: str, top: int = 20) -> alt.LayerChart:
    """Bars of a drill-down measure (``top`` groups by cases) with its benchmarks as rules."""
    data = table.dropna(subset=[measure])
    if by != "room":
        data = data.nlargest(top, "cases", keep="first")
    data = data[["group", "cases", measure]]
    fmt = ".0%" if measure != "turnover_median" else ".0f"
    dom = [0, 1] if measure != "turnover_median" else [0, max(60.0, float(
        data[measure].max()) if len(data) else 60.0)]
    bars = alt.Chart(data, title=MEASURES[measure]).mark_bar(color="#4c78a8").encode(
        y=alt.Y("group:N", title=by, sort=list(data["group"])),
        x=alt.X(f"{measure}:Q", title=None, scale=alt.Scale(domain=dom),
                axis=alt.Axis(format=fmt)),
        tooltip=["group:N", "cases:Q", alt.Tooltip(f"{measure}:Q", format=fmt.replace("0", "1"))])
    marks = sorted((b for b in BENCHMARKS if b.measure == measure), key=lambda b: b.value)
    height = alt.Step(20)  # a fixed height squeezes the bands of a layered chart
    if not marks:
        return alt.layer(bars).properties(height=height, width="container")
    # labels above the plot, the lowest value's to the left of its rule, the others' to the right
    # (no legend: a legend below the plot collapses the chart's height in Streamlit)
    rd = pd.DataFrame({"value": [b.value for b in marks], "benchmark": [b.label for b in marks],
                       "colour": [b.colour for b in marks], "ypos": -7.0})
    rules = alt.Chart(rd).mark_rule(strokeWidth=2, strokeDash=[5, 3]).encode(
        x="value:Q", color=alt.Color("colour:N", scale=None),
        tooltip=["benchmark:N", alt.Tooltip("value:Q", format=fmt)])
    text = [alt.Chart(rd.iloc[[k]]).mark_text(
        align="right" if k == 0 else "left", dx=-3 if k == 0 else 3, fontSize=10).encode(
        x="value:Q", y=alt.Y("ypos:Q", scale=None), text="benchmark:N",
        color=alt.Color("colour:N", scale=None)) for k in range(len(rd))]
    return alt.layer(bars, rules, *text).properties(height=height, width="container")
