"""Starting the model from a snapshot: work in progress resumes with its residual time.

Remaining times are drawn by inverse transform from the same uniform the case's full duration
used, conditioned on the time already spent: ``F⁻¹(F(e) + u·(1 − F(e))) − e``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator

from twin.demand import Case
from twin.model import SuiteModel
from twin.scenario import Scenario
from twin.snapshot import RoomSnapshot, SuiteSnapshot


def case_duration(scn: Scenario, c: Case):
    """The distribution of a case's in-room minutes (its surgeon's, under the scenario's
    stress), the one its full duration was drawn from."""
    proc = next(p for p in scn.service(c.service).procedures if p.id == c.procedure)
    surgeon = next(s for s in scn.surgeons if s.id == c.surgeon)
    own = surgeon.durations.get(proc.id)
    if own is not None:
        return own.scaled(scn.stress.duration_factor)
    return proc.duration.scaled(surgeon.speed * scn.stress.duration_factor)



def _resume_case(model: SuiteModel, rs: RoomSnapshot) -> Generator:
    env, cid, rid = model.env, rs.case_id, rs.room
    assert cid is not None
    c, tr = model.week.cases[cid], model.week.truth[cid]
    e = max(rs.elapsed, 0.0)
    rest = rs.remaining if rs.remaining is not None else \
        float(case_duration(model.scn, c).residual(tr.u_duration, e))
    total = e + rest
    pre, post = tr.pre, tr.post
    if rs.phase == "pre":
        pre = max(pre, e + 0.5)
    total = max(total, pre + post + 1.0) if rs.phase == "pre" else total
    if rs.phase == "procedure":
        total = max(total, e + post + 1.0)
    model.week.truth[cid] = tr = dataclasses.replace(tr, duration=total, pre=pre, post=post)
    model.started.add(cid)
    model.log.case(env.now - e, "in_room", cid, rid)
    model.state[rid] = ["in_case", cid, env.now - e, env.now - e + c.booked_minutes]
    if rs.phase in ("pre", "procedure"):
        model.surgeons.seize({c.surgeon: 1})
        if c.trays:
            model.trays.seize({t: c.trays.count(t) for t in dict.fromkeys(c.trays)})
    model.staff.seize(c.crew)
    remaining = {
        "pre": pre - e,
        "procedure": total - e - post,
        "post": max(total - e, 0.0),
        "hold": 0.0,
    }[rs.phase]
    phase = "post" if rs.phase == "hold" else rs.phase
    yield from model._perform(rid, cid, phase, remaining)
    yield from model.turnover(rid, cid, tr.turnover)


def _resume_turnover(model: SuiteModel, rs: RoomSnapshot) -> Generator:
    scn = model.scn
    f = scn.stress.turnover_factor
    leaving = model.week.cases.get(rs.case_id or "")
    base = ((scn.service(leaving.service).turnover if leaving else None) or scn.turnover).scaled(f)
    # the uniform behind the leaving case's turnover sample, else the median
    if rs.remaining is not None:
        remaining = rs.remaining
    else:
        tr = model.week.truth.get(rs.case_id or "")
        u = float(base.cdf(tr.turnover)) if tr else 0.5
        remaining = float(base.residual(u, rs.elapsed))
    yield from model.turnover(rs.room, rs.case_id or "", remaining)


def resume(model: SuiteModel, snap: SuiteSnapshot) -> dict[str, Generator]:
    """Seize what work in progress holds and return each busy room's lead-in process."""
    leads: dict[str, Generator] = {}
    for rs in snap.rooms:
        if rs.state == "in_case" and rs.case_id:
            leads[rs.room] = _resume_case(model, rs)
        elif rs.state == "turnover":
            leads[rs.room] = _resume_turnover(model, rs)
        elif rs.state == "down" and rs.down_until is not None:
            model._room_down(rs.room, rs.down_until, "snapshot")
    for ps in snap.pacu:
        c, tr = model.week.cases[ps.case_id], model.week.truth[ps.case_id]
        model.pacu.seize({"pacu": 1})
        model.log.case(model.env.now - ps.elapsed, "pacu_in", ps.case_id)
        if ps.remaining is not None:
            remaining = ps.remaining
        else:
            dist = model.scn.pacu.los[c.patient_class]
            remaining = float(dist.residual(float(dist.cdf(tr.pacu_los)), ps.elapsed))
        model.started.add(ps.case_id)
        model.env.process(model._recover(ps.case_id, remaining, boarding=ps.state == "boarding",
                                         since=model.env.now - ps.elapsed))
    return leads
