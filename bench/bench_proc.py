"""Process helpers shared by the scripts in bench/ (nginx_compare.py, fleet_bench.py, pgo_train.py):
the servers a run starts and stops, progress lines, the load average, waiting for a server's port
file and for it to answer HTTP, and the CPU time and context switches of processes read from
/proc."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


class Servers:
    """The processes a benchmark run starts, in a temp dir of its own (world-readable: nginx's
    workers run as an unprivileged user), each logging to <dir>/<name>.log. close() stops them in
    reverse order (SIGTERM, or SIGKILL for those started with kill=True), waits up to
    `stop_timeout` s each before killing, and removes the dir unless `keep`."""

    def __init__(self, prefix, stop_timeout, keep=False):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)
        self.stop_timeout = stop_timeout
        self.keep = keep
        self._procs = []  # (process, kill)

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, name, cmd, kill=False):
        with open(self.path(name + ".log"), "w") as logf:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT)
        self._procs.append((p, kill))
        return p

    def close(self):
        for p, kill in reversed(self._procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        for p, _ in self._procs:
            try:
                p.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.keep:
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

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


def wait_http(port, path, proc, what, timeout=30):
    """Waits until GET `path` on the loopback `port` gets any HTTP answer; raises when `proc`
    exits first or nothing answers within `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing answers on port {port} ({what})")


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
