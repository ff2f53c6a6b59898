"""The script that starts an environment kernel on its host, fed on stdin.

The same script serves every provider: ``local`` pipes it to a local Python,
``ssh``, RunPod and Northflank pipe it through an SSH channel. Its parameters,
the kernel's HMAC key among them, are embedded in the script text, so they
travel on stdin and never on a command line. On the host it:

1. makes the private working folder (mode 0700);
2. finds ipykernel, or installs it into a private virtual environment there;
3. lets the kernel bind free ports on 127.0.0.1 only, and reads them back;
4. writes the connection file (mode 0600) and starts ipykernel in a new
   session, so it outlives the SSH channel and the client process;
5. prints one JSON line: pid, ports, Python version, connection file.

With limits (idle minutes, a budget or lifetime turned into seconds left), a
watchdog process beside the kernel stops it, and the machine where the
provider allows it, even when no client is connected. Other verbs of the same
script check a recorded kernel and stop it.
"""

from __future__ import annotations

import json

# Runs on the host, under whatever Python 3 it has: standard library only.
_HOST_SCRIPT = r'''
import json, os, signal, subprocess, sys, time

P = json.loads(PARAMS)
WORK = os.path.expanduser(P["workdir"])
CF = os.path.join(WORK, "kernel.json")
PIDFILE = os.path.join(WORK, "kernel.pid")
PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def recorded_pid():
    try:
        with open(PIDFILE) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


INSTALLED = []


def python_with_ipykernel():
    candidates = [P.get("python") or sys.executable,
                  os.path.join(WORK, ".venv", "bin", "python")]
    for py in candidates:
        if os.sep in py and not os.path.exists(py):
            continue
        if py == sys.executable:
            import importlib.util
            if importlib.util.find_spec("ipykernel") is not None:
                return py
            continue
        try:
            ok = subprocess.run([py, "-c", "import ipykernel"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
        except OSError:
            continue
        if ok:
            return py
    if not P.get("install", True):
        return None
    venv = os.path.join(WORK, ".venv")
    sys.stderr.write("ipykernel is missing on this host: installing it into %s\n" % venv)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True,
                   stdout=sys.stderr, stderr=sys.stderr)
    py = os.path.join(venv, "bin", "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "ipykernel"], check=True,
                   stdout=sys.stderr, stderr=sys.stderr)
    INSTALLED.append(venv)
    return py


def bound_ports(proc, deadline_s=60.0):
    """The connection info once the kernel has written its real ports."""
    end = time.time() + deadline_s
    while time.time() < end:
        if proc.poll() is not None:
            return None
        try:
            with open(CF) as f:
                info = json.load(f)
        except (OSError, ValueError):
            info = {}
        if info and all(info.get(k) for k in PORTS):
            return info
        time.sleep(0.02)
    proc.kill()
    return None


def log_tail():
    try:
        with open(os.path.join(WORK, "kernel.log"), "rb") as f:
            return f.read()[-1500:].decode(errors="replace")
    except OSError:
        return "(no kernel.log)"


def start():
    os.makedirs(WORK, mode=0o700, exist_ok=True)
    pid = recorded_pid()
    if pid and alive(pid) and os.path.exists(CF):
        with open(CF) as f:
            info = json.load(f)
        if info.get("key") == P["key"]:
            return say({"ok": True, "pid": pid, "reused": True, "python": py_version(),
                        "ports": {k: info[k] for k in PORTS}, "connection_file": CF})
        stop_pid(pid)
    py = python_with_ipykernel()
    if py is None:
        return say({"ok": False, "error": "ipykernel is not installed on the host"})
    # Ports 0: the kernel binds free ports itself and writes them back to the
    # connection file, so two kernels started at once can never pick the same.
    info = dict.fromkeys(PORTS, 0)
    info.update(ip="127.0.0.1", transport="tcp", key=P["key"],
                signature_scheme="hmac-sha256", kernel_name="sindri")
    fd = os.open(CF, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    cwd = os.path.expanduser(P.get("cwd") or WORK)
    os.makedirs(cwd, exist_ok=True)
    # JPY_* belong to the Jupyter kernel that may have started us: a kernel
    # inheriting JPY_PARENT_PID watches the wrong parent and shuts itself down.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
    env.update(P.get("env", {}))
    env["SINDRI_ENVIRONMENT"] = P.get("name", "")
    log = open(os.path.join(WORK, "kernel.log"), "ab")
    proc = subprocess.Popen([py, "-m", "ipykernel_launcher", "-f", CF], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    with open(PIDFILE, "w") as f:
        f.write(str(proc.pid))
    info = bound_ports(proc)
    if info is None:
        return say({"ok": False, "error": "the kernel exited at start: " + log_tail()})
    start_watchdog(proc.pid)
    say({"ok": True, "pid": proc.pid, "reused": False, "python": py_version(py),
         "ports": {k: info[k] for k in PORTS}, "connection_file": CF,
         "installed_ipykernel_into": INSTALLED[0] if INSTALLED else None})


def py_version(py=None):
    if py is None or py == sys.executable:
        return sys.version.split()[0]
    out = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def stop_pid(pid, grace=5.0):
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    end = time.time() + grace
    while time.time() < end and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


WATCHDOG = r"""
import json, os, signal, subprocess, sys, time
WORK = sys.argv[1]
with open(os.path.join(WORK, "watchdog.json")) as f:
    C = json.load(f)
PID, EVERY = C["kernel_pid"], C["interval_s"]
TICKS = os.sysconf("SC_CLK_TCK")

def group_cpu():
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == PID:
                total += int(fields[11]) + int(fields[12])
    return total

def gpu_busy():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.strip().isdigit() and int(line) > 5 for line in out.splitlines())

def alive():
    try:
        os.kill(PID, 0)
        return True
    except ProcessLookupError:
        return False

def note(**kw):
    with open(os.path.join(WORK, "watchdog.state"), "w") as f:
        json.dump(kw, f)

begun = time.time()
stop_at = begun + C["stop_after_s"] if C.get("stop_after_s") is not None else None
idle_s = C["idle_minutes"] * 60 if C.get("idle_minutes") else None
last_cpu, active = group_cpu(), begun
while alive():
    time.sleep(EVERY)
    now, cpu = time.time(), group_cpu()
    if cpu - last_cpu > 0.02 * EVERY * TICKS or gpu_busy():
        active = now
    last_cpu = cpu
    reason = None
    if stop_at is not None and now >= stop_at:
        reason = "the budget or lifetime limit was reached"
    elif idle_s is not None and now - active >= idle_s:
        reason = "idle for %g minutes" % C["idle_minutes"]
    note(idle_since=active, checked=now, stopped=reason)
    if reason:
        if C.get("self_stop"):
            subprocess.run(C["self_stop"], timeout=120)
        try:
            os.killpg(PID, signal.SIGTERM)
        except ProcessLookupError:
            pass
        break
"""


def start_watchdog(kernel_pid):
    """Stop the kernel (and the machine, where it can) on idleness or a deadline."""
    limits = P.get("limits") or {}
    if not (limits.get("idle_minutes") or limits.get("stop_after_s") is not None):
        return
    config = dict(limits, kernel_pid=kernel_pid)
    config.setdefault("interval_s", 30)
    with open(os.path.join(WORK, "watchdog.json"), "w") as f:
        json.dump(config, f)
    log = open(os.path.join(WORK, "watchdog.log"), "ab")
    dog = subprocess.Popen([sys.executable, "-c", WATCHDOG, WORK], stdin=subprocess.DEVNULL,
                           stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(WORK, "watchdog.pid"), "w") as f:
        f.write(str(dog.pid))


def status():
    pid = recorded_pid()
    say({"ok": True, "pid": pid, "alive": bool(pid and alive(pid))})


def stop():
    pid = recorded_pid()
    if pid:
        stop_pid(pid)
    try:
        with open(os.path.join(WORK, "watchdog.pid")) as f:
            stop_pid(int(f.read().strip()), grace=1.0)
    except (OSError, ValueError):
        pass
    for path in (PIDFILE, CF, os.path.join(WORK, "watchdog.pid")):
        if os.path.exists(path):
            os.remove(path)
    if P.get("remove"):
        import shutil
        shutil.rmtree(WORK, ignore_errors=True)
    say({"ok": True, "pid": pid, "stopped": True})


{"start": start, "status": status, "stop": stop}[P["verb"]]()
'''


def script(verb: str, **params: object) -> str:
    """The host script for ``verb`` (start, status, stop) with its parameters."""
    params["verb"] = verb
    return f"PARAMS = {json.dumps(json.dumps(params))}\n{_HOST_SCRIPT}"


def parse_reply(stdout: str) -> dict:
    """The last JSON line the host script printed."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return {}
