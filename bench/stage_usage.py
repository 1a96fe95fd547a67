"""Run a command and write what it used, as JSON, to the file argv[1]: the CPU seconds and
bytes written of its whole process tree, and the CPU seconds of its busiest threads.

    python bench/stage_usage.py USAGE.json COMMAND [ARG ...]

The totals come from getrusage(RUSAGE_CHILDREN) once every descendant is reaped (this
process makes itself their subreaper, so grandchildren such as verify's workers count).
The threads are sampled from /proc every SAMPLE_S while the command runs (Linux; elsewhere
the list is empty): each thread's CPU seconds so far (the largest seen), its name and where
it ran; the busiest TOP, any other of KEEP_S or more, and every thread named apart from its
process. A thread runs on one core at a
time, so a thread that works alone (the main thread; those oxa names `oxa:...`,
curate/thread_names.py) bounds the command's wall time from below on any number of cores;
bench/pipeline.py turns that into its 64-core estimate. A thread's last SAMPLE_S before it
ends can be missed, so the figures are a little low, never high.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time

SAMPLE_S = 0.2
TOP = 3  # threads always reported
KEEP_S = 0.1  # and any other that used this much CPU
MOST = 40
TICKS = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    """root and every process under it (/proc/PID/task/TID/children)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
        except OSError:  # gone meanwhile
            pass
    return found


def _threads(pid: int) -> dict[tuple[int, int, int], tuple[float, str]]:
    """{(pid, tid, start tick): (CPU seconds so far, name)} of one process's threads (a tid
    can be reused)."""
    seconds = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return seconds
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]  # it may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
        utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
        seconds[(pid, int(tid), start)] = ((utime + stime) / TICKS, name)
    return seconds


def _named_apart(pid: int, name: str) -> bool:
    """Whether a thread's name differs from its process's (a thread named by its program)."""
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return name != handle.read().strip()
    except OSError:
        return False


class ThreadSampler(threading.Thread):
    """The largest CPU seconds seen of every thread under `root`, and its latest name,
    sampled until stop()."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.seen = root, {}
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            for pid in _tree(self.root):
                for key, (seconds, name) in _threads(pid).items():
                    before = self.seen.get(key, (0.0, "", False))
                    self.seen[key] = (max(seconds, before[0]), name, before[2] or _named_apart(pid, name))
            if self.done.wait(SAMPLE_S):
                return

    def busiest(self) -> list[dict]:
        """The threads worth reporting, busiest first: CPU seconds, name and where each ran."""
        ranked = sorted(self.seen.items(), key=lambda item: -item[1][0])
        kept = [item for rank, item in enumerate(ranked) if rank < TOP or item[1][0] >= KEEP_S or item[1][2]]
        return [
            {"cpu_s": round(seconds, 2), "name": name, "where": self._where(pid, tid)}
            for (pid, tid, _), (seconds, name, _) in kept[:MOST]
        ]

    def _where(self, pid: int, tid: int) -> str:
        if pid != self.root:
            return "a child process"
        return "the main thread" if tid == pid else "another thread of the process"

    def stop(self) -> None:
        self.done.set()
        self.join()


def main() -> int:
    usage_file, command = sys.argv[1], sys.argv[2:]
    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER (Linux)
    except (AttributeError, OSError):
        pass
    child = subprocess.Popen(command)
    sampler = ThreadSampler(child.pid)
    if os.path.isdir(f"/proc/{child.pid}/task"):
        sampler.start()
    rc = child.wait()
    if sampler.is_alive():
        sampler.stop()
    until = time.monotonic() + 60  # reap what the command left behind, for getrusage
    while time.monotonic() < until:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.05)
        except ChildProcessError:
            break
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "cpu_s": used.ru_utime + used.ru_stime,
        "io_written_bytes": used.ru_oublock * 512,
        "busiest_threads": sampler.busiest(),
    }
    with open(usage_file, "w") as handle:
        json.dump(figures, handle)
    return rc


if __name__ == "__main__":
    sys.exit(main())
