"""Soak: `diana watch` routing a DICOM receiver and a watched folder into a research Orthanc and an archive folder
for N minutes while a chaos loop restarts the Orthanc and the watcher (SIGTERM and SIGKILL). Run: ./dev soak.

`diana watch` uses no broker (no Redis, no Celery: the receiver, the folder source, the retries and the ledger live
in the daemon and its files), so the external service the chaos loop restarts is the destination Orthanc.
Writes soak-<stamp>.csv, .png and .md (the pass/fail summary) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feed import Site  # noqa: E402
from procs import Research, Watch  # noqa: E402
from sample import Sampler  # noqa: E402
from verdict import write_results  # noqa: E402

from diana_orthanc.testing import free_port  # noqa: E402

LEDGER_KEEP, LEDGER_KEEP_S = "15m", 900.0  # rows older than this are pruned: longer than the retry schedule (about 10 min)


def _files(work: Path, research: Research, receiver_port: int, status_port: int) -> tuple[Path, Path]:
    import yaml

    for folder in ("inbox", "dropbox", "archive"):
        (work / folder).mkdir(exist_ok=True)
    services = {
        "inbox": {"ctype": "DicomReceiver", "path": str(work / "inbox"), "aet": "DIANA", "port": receiver_port,
                  "host": "127.0.0.1", "stable_age": 5},
        "dropbox": {"ctype": "ObservableDcmDir", "path": str(work / "dropbox")},
        "research": research.service_desc(),
        "archive": {"ctype": "DcmDir", "path": str(work / "archive")},
    }
    routes = {"routes": [{"name": "modality", "source": "inbox", "dest": ["research", "archive"]},
                         {"name": "dropped", "source": "dropbox", "handler": "upload_item",
                          "dest": ["research", "archive"]}]}
    (work / "services.yml").write_text(yaml.safe_dump(services))
    (work / "services.yml").chmod(0o600)
    (work / "routes.yml").write_text(yaml.safe_dump(routes, sort_keys=False))
    return work / "services.yml", work / "routes.yml"


class Chaos:
    """Restarts the Orthanc and the watcher at random intervals (a lock keeps them apart from the end-of-run)."""

    def __init__(self, rng: random.Random, research: Research, watch: Watch, receiver_port: int, scale: float,
                 log: list[dict[str, object]], t0: float) -> None:
        self.rng, self.research, self.watch, self.port = rng, research, watch, receiver_port
        self.scale, self.log, self.t0 = scale, log, t0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.signals = [signal.SIGTERM, signal.SIGKILL]
        rng.shuffle(self.signals)

    def _note(self, what: str, **facts: object) -> None:
        entry = {"t": round(time.monotonic() - self.t0, 1), "what": what, **facts}
        self.log.append(entry)
        print(f"[soak] t={entry['t']:>7}s chaos: {what} {facts if facts else ''}", flush=True)

    def run(self, warmup: float) -> None:
        now = time.monotonic()
        next_orthanc = now + warmup + self.rng.uniform(0, 60) * self.scale
        next_watch = now + warmup + self.rng.uniform(30, 120) * self.scale
        while not self.stop.wait(1.0):
            now = time.monotonic()
            with self.lock:
                if now >= next_orthanc:
                    down = self.rng.uniform(3, 20)
                    self._note("orthanc restart", down_s=round(down, 1))
                    self.research.restart(down)
                    next_orthanc = time.monotonic() + self.rng.uniform(90, 240) * self.scale
                if now >= next_watch:
                    sig = self.signals.pop(0) if self.signals else self.rng.choice([signal.SIGTERM, signal.SIGKILL])
                    down = self.rng.uniform(1, 5)
                    self._note("watcher " + signal.Signals(sig).name, down_s=round(down, 1))
                    self.watch.stop(sig)
                    time.sleep(down)
                    self.watch.start()
                    self.watch.wait_listening(self.port)
                    next_watch = time.monotonic() + self.rng.uniform(120, 300) * self.scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "results"))
    parser.add_argument("--work", default=None, help="working folder (default: a new temporary one, removed)")
    parser.add_argument("--seed", default="soak")
    parser.add_argument("--drain-minutes", type=float, default=10.0)
    parser.add_argument("--steady-every", type=float, default=5.0,
                        help="seconds between two small studies of each steady sender (modalities, folder drop)")
    parser.add_argument("--burst-every", type=float, nargs=2, default=(540.0, 780.0), metavar=("MIN", "MAX"),
                        help="seconds between two 2,000-image bursts (uniform)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="diana-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    seconds = args.minutes * 60
    scale = max(0.25, min(1.0, args.minutes / 30))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    print(f"[soak] {args.minutes:g} min in {work}", flush=True)

    research = Research(work)
    receiver_port, status_port = free_port(), free_port()
    services, routes = _files(work, research, receiver_port, status_port)
    watch = Watch(work, services, routes, status_port, ledger_keep=LEDGER_KEEP)
    watch.start()
    if not watch.wait_listening(receiver_port):
        print((work / "watch.log").read_text()[-3000:], file=sys.stderr)
        research.stop()
        return 1
    site = Site(work, receiver_port, args.seed, steady_every=args.steady_every, burst_every=tuple(args.burst_every),
                first_burst=min(150.0, seconds * 0.2))
    sampler = Sampler(work, site, watch, research)
    t0 = sampler.started
    chaos_log: list[dict[str, object]] = []
    chaos = Chaos(rng, research, watch, receiver_port, scale, chaos_log, t0)
    stop_sampling = threading.Event()

    def sampling() -> None:
        while not stop_sampling.wait(10.0 - (time.monotonic() - t0) % 10.0):
            row = sampler.sample()
            print(f"[soak] t={row['t']:>7}s sent {row['sent']} orthanc {row['at_orthanc']} archive "
                  f"{row['in_archive']} rss {row['rss_mb']} fds {row['fds']} thr {row['threads']} ledger "
                  f"{row['ledger_rows']} p95 {row['latency_p95']} load {row['load1']:.1f}", flush=True)

    sampler_thread = threading.Thread(target=sampling, name="sampler", daemon=True)
    chaos_thread = threading.Thread(target=chaos.run, args=(min(120.0, seconds * 0.15),), name="chaos", daemon=True)
    site.start()
    sampler_thread.start()
    chaos_thread.start()
    load_start = os.getloadavg()
    try:
        time.sleep(seconds)
    finally:
        chaos.stop.set()
        chaos_thread.join()
        with chaos.lock:
            if watch.pid is None:
                watch.start()
                watch.wait_listening(receiver_port)
        feed_end = time.monotonic() - t0
        print("[soak] run over: the site finishes its sends, then the backlog drains", flush=True)
        site.stop()
        expected = set(site.expected.items)
        deadline = time.monotonic() + args.drain_minutes * 60
        while time.monotonic() < deadline:
            if len(sampler.seen) >= len(expected) and (research.count() or 0) >= len(expected):
                break
            time.sleep(2)
        drained_at = time.monotonic() - t0
        time.sleep(max(0.0, 10.0 - (time.monotonic() - t0) % 10.0) + 1)
        stop_sampling.set()
        sampler_thread.join()
        load_end = os.getloadavg()
        watch.stop(signal.SIGTERM)
        at_orthanc = set(research.get("/instances", timeout=120))
        research.stop()
    in_archive = {name[:-4] for _d, _s, files in os.walk(work / "archive") for name in files if name.endswith(".dcm")}
    archive_files = sum(1 for _d, _s, files in os.walk(work / "archive") for n in files if n.endswith(".dcm"))
    facts = {
        "minutes": args.minutes, "stamp": stamp, "work": str(work), "feed_end_s": round(feed_end, 1),
        "drained_s": round(drained_at, 1), "load_start": load_start, "load_end": load_end,
        "site": site.summary(), "bursts": [(round(a - t0, 1), round(b - t0, 1)) for a, b in site.bursts],
        "chaos": chaos_log, "orthanc_restarts": research.restarts, "watch_starts": watch.starts,
        "watch_kills": watch.kills, "watch_exit_codes": watch.exit_codes, "ledger_skipped": watch.skipped,
        "expected": len(expected), "orthanc_missing": len(expected - at_orthanc),
        "orthanc_extra": len(at_orthanc - expected), "archive_missing": len(expected - in_archive),
        "archive_extra": len(in_archive - expected), "archive_files": archive_files,
        "ledger_keep": LEDGER_KEEP, "ledger_keep_s": LEDGER_KEEP_S, "cpus": os.cpu_count(), "steady_every": args.steady_every,
        "burst_every": list(args.burst_every),
    }
    (work / "facts.json").write_text(json.dumps(facts, indent=1))
    ok = write_results(Path(args.out), stamp, sampler, facts, work)
    if args.work is None and ok:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
