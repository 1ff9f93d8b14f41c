"""The progress chart, drawn on the server: pain before and after each session and Roland-Morris at baseline,
reassessment and discharge, each with the line a score must reach for a meaningful improvement (Ostelo 2008).

The chart is an SVG made with matplotlib's object interface (no pyplot state). The same data gives the same bytes
(fixed hash salt, no dates in the metadata), so it can be cached and compared. `summarise` gives the same facts as
plain sentences for the page and for people who cannot see the chart.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from backcare.clinic.models import Client, Course, Outcome, TreatmentSession
from backcare.clinical.instruments import (
    MIC_PERCENT,
    NRS_MAX,
    PAIN_MIC_POINTS,
    RMDQ_MAX,
    RMDQ_MIC_POINTS,
    pain_change,
    rmdq_change,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

# rcParams are process-wide; rendering holds this lock while it sets the few it needs.
_RENDER_LOCK = threading.Lock()
_RC: dict[RcKeyType, object] = {
    "svg.fonttype": "none",  # keep text as <text>, so it is searchable and readable by assistive technology
    "svg.hashsalt": "backcare-progress-chart",  # stable element ids
    "svg.id": None,
    "font.family": "DejaVu Sans",
    "font.size": 10,
}
_METADATA = {"Date": None, "Creator": "Backcare"}

PAIN_COLOURS = {"before": "#b3261e", "after": "#1f6f8b"}
RMDQ_COLOUR = "#2e7d32"
RMDQ_TIMEPOINTS = ("baseline", "reassessment", "discharge")


def meaningful_threshold(baseline: int, mic_points: int) -> int | None:
    """The score at or below which a fall from `baseline` is a meaningful improvement: baseline minus the smaller
    of `mic_points` and MIC_PERCENT of baseline (rounded up, as the instruments compare whole points). None when the
    baseline is 0 (nothing can improve)."""
    if baseline <= 0:
        return None
    percent_points = (MIC_PERCENT * baseline + 99) // 100  # ceil(30% of baseline) without floating point
    return max(baseline - min(mic_points, percent_points), 0)


@dataclass
class SessionPain:
    number: int
    before: int | None
    after: int | None


@dataclass
class RmdqPoint:
    timepoint: str
    score: int
    after_sessions: int


@dataclass
class ChartData:
    name: str
    course: Course | None
    sessions: list[SessionPain] = field(default_factory=list)
    rmdq: list[RmdqPoint] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.sessions and not self.rmdq

    @property
    def pain_scores(self) -> list[int]:
        scores: list[int] = []
        for s in self.sessions:
            scores.extend(v for v in (s.before, s.after) if v is not None)
        return scores

    @property
    def pain_baseline(self) -> int | None:
        scores = self.pain_scores
        return scores[0] if scores else None

    @property
    def pain_latest(self) -> int | None:
        scores = self.pain_scores
        return scores[-1] if scores else None

    def rmdq_score(self, timepoint: str) -> int | None:
        return next((p.score for p in self.rmdq if p.timepoint == timepoint), None)


def _pick_course(client: Client, course: Course | None) -> Course | None:
    if course is not None:
        if course.client_id != client.pk:
            raise ValueError("the course belongs to another client")
        return course
    return client.courses.order_by("-started_at", "-id").first()


def chart_data(client: Client, course: Course | None = None) -> ChartData:
    """The scores to draw: from the given course, else the client's latest course (else scores outside a course)."""
    course = _pick_course(client, course)
    outcomes = Outcome.objects.filter(client=client, instrument__in=(Outcome.Instrument.PAIN, Outcome.Instrument.RMDQ))
    outcomes = outcomes.filter(course=course) if course is not None else outcomes.filter(course__isnull=True)
    rows = list(outcomes.select_related("session").order_by("recorded_at", "id"))
    held: list[tuple[dt.datetime, int]] = []
    if course is not None:
        held = list(TreatmentSession.objects.filter(course=course).order_by("number").values_list("held_at", "number"))
    data = ChartData(name=client.full_name, course=course)

    by_session: dict[int, list[Outcome]] = {}
    for row in rows:
        if row.instrument == Outcome.Instrument.PAIN and row.session is not None:
            by_session.setdefault(row.session.number, []).append(row)
    for number in sorted(by_session):
        scores = by_session[number]
        session = scores[0].session
        assert session is not None
        # record_session writes the before-score first and the after-score second.
        before = scores[0].score
        after = scores[1].score if len(scores) > 1 and session.pain_after is not None else None
        data.sessions.append(SessionPain(number, before, after))

    for row in rows:
        if row.instrument == Outcome.Instrument.RMDQ and row.timepoint in RMDQ_TIMEPOINTS:
            # Baseline is drawn at the start; a later score after the sessions held before it was recorded.
            position = 0 if row.timepoint == "baseline" else sum(1 for when, _ in held if when <= row.recorded_at)
            data.rmdq.append(RmdqPoint(row.timepoint, row.score, position))
    return data


# --- Text -------------------------------------------------------------------------------------------------


def _summary(data: ChartData) -> str:
    if data.empty:
        return f"No scores yet for {data.name}."
    parts: list[str] = []
    base, latest = data.pain_baseline, data.pain_latest
    if base is not None and latest is not None:
        change = pain_change(base, latest)
        count = len(data.sessions)
        parts.append(
            f"{change.describe()} Pain was recorded at {count} session{'' if count == 1 else 's'}."
            if change.points
            else f"Pain was {base} at the first session and is {latest} now: no change over {count} "
            f"session{'' if count == 1 else 's'}."
        )
        line = meaningful_threshold(base, PAIN_MIC_POINTS)
        if line is not None:
            parts.append(f"A meaningful improvement in pain means reaching {line} or less.")
    else:
        parts.append("No pain scores yet.")
    rmdq_base = data.rmdq_score("baseline")
    rmdq_later = data.rmdq_score("discharge")
    if rmdq_later is None:
        rmdq_later = data.rmdq_score("reassessment")
    if rmdq_base is not None and rmdq_later is not None:
        parts.append(rmdq_change(rmdq_base, rmdq_later).describe())
    elif rmdq_base is not None:
        parts.append(f"Roland-Morris score at baseline: {rmdq_base} of {RMDQ_MAX}; no later score yet.")
    elif data.rmdq:
        first = data.rmdq[0]
        parts.append(f"Roland-Morris score at {first.timepoint}: {first.score} of {RMDQ_MAX}; no baseline recorded.")
    else:
        parts.append("No Roland-Morris scores yet.")
    if rmdq_base is not None:
        line = meaningful_threshold(rmdq_base, RMDQ_MIC_POINTS)
        if line is not None:
            parts.append(f"A meaningful improvement in Roland-Morris means reaching {line} or less.")
    return " ".join(parts)


def summarise(client: Client, course: Course | None = None) -> str:
    """The chart's facts in plain sentences, e.g. "Pain fell from 7 to 3 (4 points, 57%): a meaningful improvement."."""
    return _summary(chart_data(client, course))


# --- Drawing ----------------------------------------------------------------------------------------------


def _draw_pain(ax: Axes, data: ChartData) -> None:
    ax.set_title("Pain before and after each session", loc="left", fontsize=10, parse_math=False)
    ax.set_ylabel("Pain (0 = none, 10 = worst)", parse_math=False)
    ax.set_ylim(-0.5, NRS_MAX + 0.5)
    ax.set_yticks(range(0, NRS_MAX + 1, 2))
    ax.grid(axis="y", color="#e3e8ee", linewidth=0.8)
    if not data.sessions:
        ax.text(0.5, 0.5, "No pain scores yet", transform=ax.transAxes, ha="center", va="center", parse_math=False)
        return
    for key, label, marker in (("before", "Before session", "o"), ("after", "After session", "s")):
        points = [(s.number, getattr(s, key)) for s in data.sessions if getattr(s, key) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=marker, color=PAIN_COLOURS[key], label=label, linewidth=1.5)
    base = data.pain_baseline
    line = meaningful_threshold(base, PAIN_MIC_POINTS) if base is not None else None
    if line is not None:
        ax.axhline(
            line, color="#5b6775", linestyle="--", linewidth=1.2, label=f"Meaningful change: pain {line} or less"
        )
    ax.legend(loc="best", fontsize=8, framealpha=0.9)


def _draw_rmdq(ax: Axes, data: ChartData) -> None:
    ax.set_title("Roland-Morris disability score", loc="left", fontsize=10, parse_math=False)
    ax.set_ylabel(f"Roland-Morris (0 to {RMDQ_MAX})", parse_math=False)
    ax.set_ylim(-1, RMDQ_MAX + 1)
    ax.set_yticks(range(0, RMDQ_MAX + 1, 4))
    ax.grid(axis="y", color="#e3e8ee", linewidth=0.8)
    if not data.rmdq:
        ax.text(
            0.5, 0.5, "No Roland-Morris scores yet", transform=ax.transAxes, ha="center", va="center", parse_math=False
        )
        return
    xs = [p.after_sessions for p in data.rmdq]
    ys = [p.score for p in data.rmdq]
    ax.plot(xs, ys, marker="D", color=RMDQ_COLOUR, linewidth=1.5, label="Roland-Morris score")
    for p in data.rmdq:
        ax.annotate(
            p.timepoint.capitalize(),
            (p.after_sessions, p.score),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
            parse_math=False,
        )
    base = data.rmdq_score("baseline")
    line = meaningful_threshold(base, RMDQ_MIC_POINTS) if base is not None else None
    if line is not None:
        ax.axhline(
            line,
            color="#5b6775",
            linestyle="--",
            linewidth=1.2,
            label=f"Meaningful change: Roland-Morris {line} or less",
        )
    ax.legend(loc="best", fontsize=8, framealpha=0.9)


def _figure(data: ChartData) -> Figure:
    # matplotlib is imported here, on the first chart drawn, not when the server starts (it takes seconds).
    # A bare Figure draws through the SVG backend: no pyplot, no GUI.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.6 if data.empty else 6.2), dpi=100, layout="constrained")
    fig.suptitle(f"Progress: {data.name}", fontsize=13, fontweight="bold", parse_math=False)
    if data.empty:
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(
            0.5,
            0.55,
            "No scores yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=18,
            parse_math=False,
        )
        ax.text(
            0.5,
            0.42,
            "Pain is recorded at every session; Roland-Morris at the start, reassessment and discharge.",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="#5b6775",
            parse_math=False,
        )
        return fig
    pain_ax, rmdq_ax = fig.subplots(2, 1, sharex=True)
    _draw_pain(pain_ax, data)
    _draw_rmdq(rmdq_ax, data)
    last = max([s.number for s in data.sessions] + [p.after_sessions for p in data.rmdq] + [1])
    rmdq_ax.set_xlim(-0.5, last + 0.5)
    rmdq_ax.set_xticks(range(0, last + 1))
    rmdq_ax.set_xticklabels(["Start"] + [str(n) for n in range(1, last + 1)])
    rmdq_ax.set_xlabel("Session number", parse_math=False)
    return fig


def _svg(data: ChartData, summary: str) -> str:
    import matplotlib

    fig = _figure(data)
    buffer = io.StringIO()
    with _RENDER_LOCK, matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata=_METADATA)
    svg = buffer.getvalue()
    # Give the image an accessible name and description: <title> and <desc> as the first children of <svg>.
    start = svg.index("<svg")
    end = svg.index(">", start) + 1
    opening = svg[start:end].replace("<svg ", '<svg role="img" aria-labelledby="chart-title chart-desc" ', 1)
    text = (
        f'<title id="chart-title">{escape(f"Progress chart for {data.name}")}</title>'
        f'<desc id="chart-desc">{escape(summary)}</desc>'
    )
    return svg[:start] + opening + text + svg[end:]


def progress_chart_svg(client: Client, course: Course | None = None) -> str:
    """The progress chart as an SVG document (a string), with a <title> and <desc> for assistive technology."""
    data = chart_data(client, course)
    return _svg(data, _summary(data))


__all__ = ["ChartData", "chart_data", "meaningful_threshold", "progress_chart_svg", "summarise"]
