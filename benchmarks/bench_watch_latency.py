"""Benchmark: routing latency of ``diana watch`` — folder -> Orthanc and Orthanc -> folder, p50/p95.

Starts its own Orthanc (diana_orthanc.testing) and runs a real ``Watcher`` in a thread with the routes users write:
  folder -> Orthanc   ``upload_item`` from an ObservableDcmDir into Orthanc. A realistic CT file (~0.5 MB,
                      benchmarks/realistic.py) is written the way receivers do (temp name, then atomic rename) and the
                      clock runs until Orthanc answers for that instance.
  Orthanc -> folder   ``put_item`` on INSTANCE_ADDED from an ObservableOrthanc into a DcmDir: the clock runs from the
                      POST /instances answer until the file is complete in the folder.
Files are sent one at a time (``--n`` each, default 200), so each latency is one file's own. The baseline is the
floor the same server allows in the same run: one raw POST /instances of the same file (folder -> Orthanc), one raw
GET /instances/{id}/file written to disk (Orthanc -> folder). Prints p50/p95 of Diana and of the floor.
folder -> Orthanc also races a 20-line inotify+POST script (a watchdog observer that POSTs each file when it is
renamed into its folder, one requests Session) measured with the same clock, the files alternating between the two
folders (the #27 floor: within 1.5x at p50).

    .venv/bin/python benchmarks/bench_watch_latency.py [--n 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from realistic import realistic_ct  # noqa: E402

from diana_core.dicom import orthanc_id  # noqa: E402
from diana_core.usecases.routes import mk_route  # noqa: E402
from diana_core.usecases.watcher import Watcher  # noqa: E402
from diana_dcmdir import DcmDir, ObservableDcmDir  # noqa: E402
from diana_orthanc import ObservableOrthanc, Orthanc  # noqa: E402
from diana_orthanc.testing import orthanc_workdir, start_orthanc  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(label: str, values: list[float]) -> str:
    return (f"  {label:34s} p50 {pct(values, 0.5) * 1000:7.1f} ms   p95 {pct(values, 0.95) * 1000:7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms")


def wait_until(check, timeout: float = 30.0, step: float = 0.002) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("file never arrived")
        time.sleep(step)


def inotify_post(folder: Path, url: str, auth: tuple[str, str]):
    """The 20-line floor: POST each *.dcm renamed (or closed after writing) into ``folder``; returns the observer."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    sess = requests.Session()
    sess.auth = auth

    class Post(FileSystemEventHandler):
        def post(self, path: str) -> None:
            if path.endswith(".dcm"):
                with open(path, "rb") as fh:
                    sess.post(f"{url}/instances", data=fh.read(), timeout=30).raise_for_status()

        def on_moved(self, event) -> None:
            self.post(event.dest_path)

        def on_closed(self, event) -> None:
            self.post(event.src_path)

    folder.mkdir(parents=True, exist_ok=True)
    observer = Observer()
    observer.schedule(Post(), str(folder))
    observer.start()
    return observer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    with orthanc_workdir("diana-bench-") as work:
        server = start_orthanc(work, "bench", "BENCH")
        sess = requests.Session()
        sess.auth = (server.user, server.password)
        desc = {"host": server.host, "port": server.http_port, "user": server.user, "password": server.password}
        try:
            datasets = [realistic_ct(i, study=i // 50, series=0, patient=i // 50, run="latency")
                        for i in range(args.n)]
            blobs = []
            for ds in datasets:
                path = work / "blob.dcm"
                ds.save_as(path, enforce_file_format=True)
                blobs.append(path.read_bytes())
            ids = [orthanc_id(str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                              str(ds.SOPInstanceUID)) for ds in datasets]

            # --- folder -> Orthanc -------------------------------------------------------------------------------
            floor_in: list[float] = []
            for blob in blobs[: min(50, len(blobs))]:
                t0 = time.perf_counter()
                sess.post(f"{server.url}/instances", data=blob, timeout=30).raise_for_status()
                floor_in.append(time.perf_counter() - t0)
            server.reset()

            incoming = work / "incoming"
            incoming.mkdir()
            watcher = Watcher(retry_delays=())
            watcher.add_trigger(mk_route("upload_item", ObservableDcmDir(name="incoming", path=str(incoming)),
                                         Orthanc(name="pacs", **desc)))
            thread = threading.Thread(target=watcher.run, daemon=True)
            thread.start()
            script_folder = work / "incoming-script"
            observer = inotify_post(script_folder, server.url, (server.user, server.password))
            time.sleep(1.0)  # the observers are up
            ours_in: list[float] = []
            script_in: list[float] = []
            for i, (blob, oid) in enumerate(zip(blobs, ids, strict=True)):
                folder = incoming if i % 2 else script_folder  # alternate: the same moments for both
                tmp, final = folder / f".IM{i:05d}.part", folder / f"IM{i:05d}.dcm"
                t0 = time.perf_counter()
                tmp.write_bytes(blob)
                os.replace(tmp, final)
                wait_until(lambda oid=oid: sess.get(f"{server.url}/instances/{oid}", timeout=30).status_code == 200)
                (ours_in if i % 2 else script_in).append(time.perf_counter() - t0)
            watcher.stop()
            thread.join(timeout=30)
            observer.stop()
            observer.join(timeout=30)

            # --- Orthanc -> folder -------------------------------------------------------------------------------
            out = work / "out"
            floor_out: list[float] = []
            for oid in ids[: min(50, len(ids))]:
                t0 = time.perf_counter()
                data = sess.get(f"{server.url}/instances/{oid}/file", timeout=30).content
                (work / "floor.dcm").write_bytes(data)
                floor_out.append(time.perf_counter() - t0)
            server.reset()
            source = ObservableOrthanc(name="pacs-changes", **desc)
            source.changes()  # start at the newest change
            folder = DcmDir(name="out", path=str(out))
            watcher = Watcher(retry_delays=())
            watcher.add_trigger(mk_route("put_item", source, folder, event_type="instance_added"))
            thread = threading.Thread(target=watcher.run, daemon=True)
            thread.start()
            ours_out: list[float] = []
            expected = len(blobs)
            for n, blob in enumerate(blobs, start=1):
                t0 = time.perf_counter()
                sess.post(f"{server.url}/instances", data=blob, timeout=30).raise_for_status()
                wait_until(lambda n=n: sum(1 for _ in out.rglob("*") if _.is_file() and not _.name.startswith("."))
                           >= n)
                ours_out.append(time.perf_counter() - t0)
            watcher.stop()
            thread.join(timeout=30)
            assert sum(1 for p in out.rglob("*") if p.is_file()) == expected
        finally:
            server.stop()

    print(f"watch latency, {args.n} realistic CT files one at a time (~0.5 MB each)")
    print("folder -> Orthanc (upload_item)")
    print(line("diana watch", ours_in))
    print(line("floor: inotify+POST script", script_in))
    print(line("floor: raw POST /instances", floor_in))
    print(f"ratio p50 diana/inotify+POST script: {statistics.median(ours_in) / statistics.median(script_in):.2f}x "
          f"(p95 {pct(ours_in, 0.95) / pct(script_in, 0.95):.2f}x); load average {os.getloadavg()[0]:.1f}")
    print("Orthanc -> folder (put_item on INSTANCE_ADDED)")
    print(line("diana watch", ours_out))
    print(line("floor: raw GET /file + write", floor_out))
    print(f"ratio p50 diana/floor: folder->Orthanc {statistics.median(ours_in) / statistics.median(floor_in):.1f}x, "
          f"Orthanc->folder {statistics.median(ours_out) / statistics.median(floor_out):.1f}x")


if __name__ == "__main__":
    main()
