"""Timeline pictures of a run: per device and PASID, the page requests, the PQ
records, the driver's commands, the fences and the PRG responses over cycles,
with the driver's PRI-off / teardown spans and the violation marked.

Input is a run trace (:mod:`cocotb_tests.cosim.trace`: a list of
``[cycle, kind, fields]``); output a PNG drawn with matplotlib's Agg backend.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt          # noqa: E402  (after the backend is chosen)
from matplotlib.lines import Line2D      # noqa: E402

__all__ = ["draw_timeline", "rows_of"]

_IOMMU = ("iommu",)
_CODE_STYLE = {0x0: ("#2ca02c", "Success"), 0x1: ("#ff7f0e", "Invalid Request"),
               0xF: ("#d62728", "Response Failure")}
_SPAN_STEPS = {"pri_off": "#9467bd", "pasid_teardown": "#8c564b", "pri_on": "#17becf"}


def _row_key(fields):
    did = fields.get("did")
    if did is None:
        return None
    return (did, fields["pid"] if fields.get("pv") else None)


def _row_label(key):
    if key == _IOMMU:
        return "IOMMU: commands, fences"
    did, pid = key
    return f"dev {did:#x} " + (f"PASID {pid:#x}" if pid is not None else "no PASID in message")


def rows_of(events):
    """The rows of the picture: one per (device, PASID) seen, sorted, then the IOMMU row."""
    keys = {_row_key(f) for _, kind, f in events
            if kind in ("request", "pq_record", "response", "command")}
    keys.discard(None)
    return sorted(keys, key=lambda k: (k[0], -1 if k[1] is None else k[1])) + [_IOMMU]


def draw_timeline(events, path, *, title="", last_cycles=4000):
    """Draw ``events`` into the PNG ``path``; shows at most the ``last_cycles``
    cycles before the end (or the violation).  Returns the path."""
    events = [tuple(e) for e in events]
    violation = next(((c, f) for c, k, f in events if k == "violation"), None)
    end = violation[0] if violation else (events[-1][0] if events else 0)
    start = max(0, end - last_cycles)
    shown = [e for e in events if start <= e[0] <= end + 5]
    rows = rows_of(shown) or [_IOMMU]
    index = {key: i for i, key in enumerate(rows)}
    height = max(3.0, 0.55 * len(rows) + 1.8)
    fig, ax = plt.subplots(figsize=(15, height), dpi=110)

    def y(key, offset=0.0):
        return index[key] + offset

    series = {}

    def put(name, x, yy, **style):
        xs, ys, st = series.setdefault(name, ([], [], style))
        xs.append(x)
        ys.append(yy)

    open_steps = {}
    for cycle, kind, f in shown:
        key = _row_key(f)
        if kind == "request" and key in index:
            put("request L=1" if f.get("l") else "request L=0", cycle, y(key, 0.28),
                marker="|", color="#555555" if f.get("l") else "#aaaaaa", s=60)
        elif kind == "pq_record" and key in index:
            put("PQ record", cycle, y(key, 0.12), marker="s", color="#1f77b4", s=14)
        elif kind == "command":
            if f.get("op") == "ATS.PRGR" and key in index:
                put("ATS.PRGR written", cycle, y(key, -0.08), marker="v", color="#7f7f7f", s=22)
            else:
                put(f"{f.get('op')} written", cycle, y(_IOMMU, 0.15),
                    marker={"IOFENCE.PD": "D", "IOFENCE.C": "d"}.get(f.get("op"), "x"),
                    color={"IOFENCE.PD": "#9467bd", "IOFENCE.C": "#17becf"}.get(f.get("op"), "#555555"),
                    s=22)
        elif kind == "fence":
            put("fence completed", cycle, y(_IOMMU, -0.15), marker="*", color="#e377c2", s=45)
        elif kind == "response" and key in index:
            color, label = _CODE_STYLE.get(f.get("code"), ("#000000", "reserved code"))
            auto = str(f.get("source", "")).startswith("auto")
            put(f"{'auto-' if auto else ''}response {label}", cycle, y(key, -0.26),
                marker="o" if not auto else "^", color=color, s=24)
        elif kind == "step" and f.get("name") in _SPAN_STEPS and f.get("did") is not None:
            skey = (f["name"], f["did"], f.get("pid") if f.get("pv") else None)
            if f.get("phase") == "start":
                open_steps[skey] = cycle
            elif f.get("phase") == "end" and skey in open_steps:
                _span(ax, rows, index, skey, open_steps.pop(skey), cycle)
    for skey, begun in open_steps.items():
        _span(ax, rows, index, skey, begun, end)

    for name, (xs, ys, style) in sorted(series.items()):
        ax.scatter(xs, ys, label=name, linewidths=1.2 if style.get("marker") in ("|", "x") else 0.4,
                   edgecolors="none" if style.get("marker") not in ("|", "x") else None,
                   zorder=3, **style)
    if violation:
        vc, vf = violation
        for g in vf.get("groups", ()):
            key = (g["did"], g["pid"] if g["pv"] else None)
            sent = [c for c, k, f in shown if k == "request" and f.get("l") and c <= vc
                    and (f["did"], f["pid"] if f.get("pv") else None) == key
                    and f.get("prgi") == g["prgi"]]
            if key in index and sent:
                ax.scatter([sent[-1]], [y(key, 0.28)], s=160, facecolors="none",
                           edgecolors="#d62728", linewidths=1.6, zorder=5)
                ax.annotate(f"PRGI {g['prgi']}: no answer", xy=(sent[-1], y(key, 0.28)),
                            xytext=(6, 6), textcoords="offset points", fontsize=7,
                            color="#d62728", zorder=5)
        ax.axvline(vc, color="#d62728", linewidth=2.0, zorder=4)
        ax.annotate(f"invariant {vf.get('invariant')} broken at cycle {vc}:\n"
                    f"{_wrap(vf.get('message', ''), 90)}",
                    xy=(vc, len(rows) - 0.5), xytext=(-10, -4), textcoords="offset points",
                    ha="right", va="top", fontsize=8, color="#d62728",
                    bbox=dict(boxstyle="round", fc="white", ec="#d62728", alpha=0.9), zorder=5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_row_label(k) for k in rows], fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(start - 5, end + max(10, (end - start) // 50))
    ax.set_xlabel("cycle")
    for i in range(len(rows)):
        ax.axhline(i + 0.5, color="#eeeeee", linewidth=0.8, zorder=0)
    ax.grid(axis="x", color="#f2f2f2")
    ax.set_title(title, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    for name, color in _SPAN_STEPS.items():
        handles.append(Line2D([0], [0], color=color, alpha=0.3, linewidth=8))
        labels.append(f"driver {name}")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _span(ax, rows, index, skey, begin, finish):
    name, did, pid = skey
    for key in rows:
        if key != _IOMMU and key[0] == did and (pid is None or key[1] == pid):
            i = index[key]
            ax.fill_betweenx([i - 0.45, i + 0.45], begin, max(finish, begin + 1),
                             color=_SPAN_STEPS[name], alpha=0.13, zorder=1, linewidth=0)


def _wrap(text, width):
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:4])
