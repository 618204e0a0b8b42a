"""Process helpers shared by the benchmark scripts in bench/ (nginx_compare.py, fleet_bench.py):
progress lines, the load average, waiting for a server's port file, and the CPU time and context
switches of processes read from /proc."""

import os
import sys
import time

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_port_file(path, proc, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not write {path}")


def cpu_seconds(pids):
    """User + system CPU of the processes (and their threads), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / tick


def context_switches(pids):
    """Voluntary + involuntary context switches of every thread of the processes."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt")):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass
    return total


def nginx_pids(master_pid):
    out = [master_pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == master_pid:
                    out.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
    return out
