"""The soak's results: the CSV of samples, a PNG chart (matplotlib) and the pass/fail summary in markdown."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from sample import FIELDS, _percentile

GROWTH_LIMIT = 0.05  # RSS / fds / threads: last third vs first third of the warm samples
ELASTICITY_LIMIT = 0.25  # a state file growing with the events would be 1.0
SMALL_KB = 64.0  # a file this small is bounded whatever its trend
LIFE_MIN_SAMPLES = 9  # a daemon life judged for RSS growth: >= 1.5 min of warm samples (the chaos kills every ~3 min)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _warm(rows: list[dict[str, Any]], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Samples after the run's warm-up (15 %, at most 2 min) from a daemon up for 60 s, before the drain."""
    start = min(120.0, facts["minutes"] * 60 * 0.15)
    return [r for r in rows if start <= r["t"] <= facts["feed_end_s"] and (r["watch_age"] or 0) >= 60
            and r["rss_mb"] is not None]


def flatness(rows: list[dict[str, Any]], key: str) -> tuple[float | None, float | None, float | None]:
    """(median of the first third, of the last third, growth) of ``key`` over the warm samples."""
    values = [float(r[key]) for r in rows if r[key] is not None]
    if len(values) < 3:
        return None, None, None
    third = len(values) // 3
    first, last = _median(values[:third]), _median(values[-third:])
    assert first is not None and last is not None
    return first, last, (last - first) / first if first else 0.0


def elasticity(rows: list[dict[str, Any]], key: str, feed_end: float) -> tuple[float, float, float | None]:
    """(value at half time, at the end, elasticity): relative growth of ``key`` over the second half of the run
    divided by the relative growth of the instances delivered meanwhile (1.0 = grows with the events)."""
    run = [r for r in rows if r["t"] <= feed_end and r[key] is not None]
    if len(run) < 4:
        return 0.0, 0.0, None
    half = min(run, key=lambda r: abs(r["t"] - feed_end / 2))
    end = run[-1]
    v_half, v_end = float(half[key]), float(end[key])
    n_half, n_end = float(half["in_archive"] or 0), float(end["in_archive"] or 0)
    if v_half <= 0 or n_half <= 0 or n_end <= n_half:
        return v_half, v_end, None
    return v_half, v_end, ((v_end - v_half) / v_half) / ((n_end - n_half) / n_half)


def chart(path: Path, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t"] / 60 for r in rows]

    def series(key: str) -> list[float]:
        return [float("nan") if r[key] is None else float(r[key]) for r in rows]

    fig, axes = plt.subplots(5, 1, figsize=(11, 14), sharex=True)
    panels = [
        (axes[0], [("rss_mb", "RSS (MiB)")], "watcher process"),
        (axes[1], [("fds", "open fds"), ("threads", "threads")], "watcher process"),
        (axes[2], [("sent", "sent"), ("in_archive", "in archive folder"), ("at_orthanc", "at Orthanc"),
                   ("backlog", "backlog (archive)")], "instances"),
        (axes[3], [("ledger_kb", "ledger KiB"), ("folder_state_kb", "folder mark KiB"),
                   ("deadletter_kb", "dead letters KiB"), ("log_kb", "log KiB"), ("pending_marks", "pending marks")],
         "state files"),
        (axes[4], [("latency_p50", "p50 (s)"), ("latency_p95", "p95 (s)")], "latency to the archive"),
    ]
    for ax, keys, title in panels:
        for key, label in keys:
            ax.plot(t, series(key), label=label, linewidth=1.2)
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    axes[3].set_yscale("symlog")
    for ax in axes:
        for start, end in facts["bursts"]:
            ax.axvspan(start / 60, end / 60, color="orange", alpha=0.15)
        for event in facts["chaos"]:
            color = "red" if "SIGKILL" in str(event["what"]) else "purple" if "watcher" in str(event["what"]) \
                else "grey"
            ax.axvline(float(event["t"]) / 60, color=color, alpha=0.5, linewidth=0.8, linestyle="--")
        ax.axvline(facts["feed_end_s"] / 60, color="black", linewidth=1)
    axes[-1].set_xlabel("minutes (orange: 2,000-image bursts; dashed: grey Orthanc restart, purple watcher SIGTERM, "
                        "red watcher SIGKILL; black: end of sending, then the drain)", fontsize=8)
    fig.suptitle(f"diana watch soak, {facts['minutes']:g} min, {facts['stamp']}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_results(out: Path, stamp: str, sampler: Any, facts: dict[str, Any], work: Path) -> bool:
    """Write soak-STAMP.csv/.png/.md into ``out``; True when every criterion passed."""
    out.mkdir(parents=True, exist_ok=True)
    rows = sampler.rows
    base = out / f"soak-{stamp}"
    with open(f"{base}.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FIELDS))
        writer.writeheader()
        writer.writerows(rows)
    chart(Path(f"{base}.png"), rows, facts)

    checks: list[tuple[str, bool, str]] = []
    exp = facts["expected"]
    delivered = all(facts[k] == 0 for k in ("orthanc_missing", "orthanc_extra", "archive_missing", "archive_extra"))
    checks.append(("every instance delivered exactly once per destination", delivered and
                   facts["archive_files"] == exp,
                   f"{exp} distinct instances sent; Orthanc missing {facts['orthanc_missing']}, extra "
                   f"{facts['orthanc_extra']}; archive missing {facts['archive_missing']}, extra "
                   f"{facts['archive_extra']}, {facts['archive_files']} files for {exp} SOP UIDs"))
    warm = _warm(rows, facts)
    lives: dict[Any, list[float]] = {}
    for r in warm:
        lives.setdefault(r["watch_pid"], []).append(float(r["rss_mb"]))
    in_life = [v[-1] / v[0] - 1 for v in lives.values() if len(v) >= 2]
    # The chaos loop restarts the watcher every few minutes, and a new process starts from a fresh heap (its
    # plateau depends on what its first minutes carried: a burst or not), so a leak shows within a life, not
    # between lives: each life's growth from 60 s after its start to its last sample.
    long_lives = [v[-1] / v[0] - 1 for v in lives.values() if len(v) >= LIFE_MIN_SAMPLES]
    checks.append((f"RSS flat within each daemon life of >= {LIFE_MIN_SAMPLES * 10 / 60:g} min (<= {GROWTH_LIMIT:.0%})",
                   bool(long_lives) and max(long_lives) <= GROWTH_LIMIT,
                   f"{len(long_lives)} lives, growth median {_median(long_lives) or 0:+.1%}, max "
                   f"{max(long_lives, default=0):+.1%}"))
    for key, label in (("fds", "open fds"), ("threads", "threads")):
        first, last, growth = flatness(warm, key)
        # fds and threads are counts near 10: one association or keep-alive open at the sample is already 8 %
        ok = growth is not None and (growth <= GROWTH_LIMIT or (key != "rss_mb" and last - first <= 1))
        shown = "n/a" if growth is None else f"{first:g} -> {last:g} ({growth:+.1%})"
        limit = f"<= {GROWTH_LIMIT:.0%}" + ("" if key == "rss_mb" else " or <= 1")
        checks.append((f"{label} flat after warm-up ({limit})", ok, shown))
    keep = facts.get("ledger_keep_s")
    if keep:
        # rows are bounded by the recent traffic: never more than two routes' rows for what reached the archive
        # within the keep window (plus one prune period and a minute of slack), whatever ran before it
        worst = 0.0
        for r in rows:
            if r["ledger_rows"] is None or r["in_archive"] is None or r["t"] < keep:
                continue
            before = [x["in_archive"] for x in rows if x["t"] <= r["t"] - keep - 180 and x["in_archive"] is not None]
            recent = 2 * (float(r["in_archive"]) - float(before[-1] if before else 0))
            worst = max(worst, float(r["ledger_rows"]) / (1.1 * recent + 200))
        checks.append(("ledger rows bounded by the keep window (rows <= 2 routes x instances of the last "
                       f"{keep / 60:g} min + 3 min)", worst <= 1.0, f"worst sample at {worst:.2f} of that bound"))
    for key, label in (("ledger_kb", "ledger file"), ("folder_state_kb", "folder mark file"),
                       ("deadletter_kb", "dead-letter file")):
        v_half, v_end, e = elasticity(rows, key, facts["feed_end_s"])
        ok = (v_end <= SMALL_KB if key.endswith("_kb") else False) or (e is not None and e <= ELASTICITY_LIMIT)
        shown = f"{v_half:g} at half time -> {v_end:g} at the end" + \
            ("" if e is None else f", elasticity {e:.2f} (1.0 = grows with the events)")
        checks.append((f"{label} bounded", ok, shown))
    marks = [r["pending_marks"] for r in rows]
    checks.append(("receiver pending marks all gone once the backlog drained (a mark lives until routed)",
                   bool(marks) and marks[-1] == 0, f"max {max(marks, default=0)} during the run, {marks[-1]} at the end"))
    warm_p95 = [float(r["latency_p95"]) for r in rows
                if r["latency_p95"] is not None and r["t"] >= min(120.0, facts["minutes"] * 9) and
                r["t"] <= facts["feed_end_s"]]
    half = len(warm_p95) // 2
    p_first, p_last = _median(warm_p95[:half]), _median(warm_p95[half:])
    steady = p_first is not None and p_last is not None and p_last <= max(1.5 * p_first, p_first + 0.25)
    checks.append(("latency p95 steady (median of the 10 s p95s, 2nd half <= 1.5x 1st half)", steady,
                   f"{p_first} s -> {p_last} s; worst 10 s window {max(warm_p95, default=None)} s"))
    v_half, v_end, e = elasticity(rows, "log_kb", facts["feed_end_s"])
    per_event = v_end * 1024 / max(1, exp)
    checks.append(("log not growing with the events (<= 0.5 elasticity or <= 16 bytes per instance)",
                   (e is not None and e <= 0.5) or per_event <= 16,
                   f"{v_half:g} KiB at half time -> {v_end:g} KiB at the end ({per_event:.1f} bytes per instance"
                   + ("" if e is None else f", elasticity {e:.2f}") + ")"))
    passed = all(ok for _, ok, _ in checks)
    all_lat = sampler.latencies
    _, audit_end, _ = elasticity(rows, "audit_kb", facts["feed_end_s"])
    lines = [
        f"# Soak {stamp}: {'PASS' if passed else 'FAIL'}",
        "",
        f"`diana watch -R` for {facts['minutes']:g} min: a DICOM receiver (fed by `/usr/bin/storescu`) and a watched "
        "folder, each routed into a research Orthanc and an archive folder; the mock site's small-pixel instances "
        "(64x64, ~10 KB); a 2,000-image CT sent in one association now and then. `diana watch` uses no broker: "
        "the chaos loop restarts the destination Orthanc and the watcher (SIGTERM and SIGKILL).",
        "",
        f"- machine: {facts['cpus']} cores, shared; load average at start {facts['load_start'][0]:.1f} / "
        f"{facts['load_start'][1]:.1f} / {facts['load_start'][2]:.1f}, at the end {facts['load_end'][0]:.1f} / "
        f"{facts['load_end'][1]:.1f} / {facts['load_end'][2]:.1f}; samples' load1 median "
        f"{_median([r['load1'] for r in rows]):.1f}, max {max(r['load1'] for r in rows):.1f}",
        f"- offered: a small study every {facts.get('steady_every', 3.0):g} s from each steady sender, a 2,000-image "
        f"burst every {facts.get('burst_every', [360, 600])[0]:g}-{facts.get('burst_every', [360, 600])[1]:g} s; "
        f"{exp / max(1.0, facts['feed_end_s']):.1f} instances/s on average",
        f"- sent: {facts['site']['sent']} ({exp} distinct; {facts['site']['resends']} storescu sends repeated "
        f"after the receiver went down), {len(facts['bursts'])} bursts",
        f"- chaos: {facts['orthanc_restarts']} Orthanc restarts, watcher stopped {facts['watch_kills']}; "
        f"{facts['ledger_skipped']} deliveries skipped by the ledger as already done (repeats after a stop)",
        f"- sending ended at {facts['feed_end_s'] / 60:.1f} min, backlog drained at {facts['drained_s'] / 60:.1f} min",
        f"- latency to the archive over the run: p50 {_percentile(all_lat, 50) or 0:.3f} s, "
        f"p95 {_percentile(all_lat, 95) or 0:.3f} s, max {max(all_lat, default=0):.1f} s ({len(all_lat)} timed)",
        f"- audit trail (one line per delivery, an append-only record by design, not state): {audit_end:g} KiB",
        f"- ledger keeps rows {facts['ledger_keep']} (`--ledger-keep`)",
        f"- RSS within each daemon life (from 60 s after its start to its last sample; {len(in_life)} lives): "
        + (f"median {_median(in_life):+.1%}, max {max(in_life):+.1%}" if in_life else "n/a"),
        "",
        "| criterion | result | measured |",
        "|---|---|---|",
        *[f"| {name} | {'pass' if ok else '**FAIL**'} | {shown} |" for name, ok, shown in checks],
        "",
        f"Samples every 10 s: `soak-{stamp}.csv`; chart: `soak-{stamp}.png`.",
        "",
    ]
    Path(f"{base}.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines), flush=True)
    return passed
