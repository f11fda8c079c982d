#!/usr/bin/env python3
# What a systemd socket unit does, for the restart tests: holds one listening
# socket for as long as it runs, and starts the service with it as fd 3
# (LISTEN_FDS=1, LISTEN_PID=the service's pid), again and again.
# stdin commands, one per line: "start", "stop" (SIGTERM, wait), "quit".
# stdout: "port N" once, then "started PID" / "exited CODE".
import os, signal, socket, subprocess, sys

cmd = sys.argv[1:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1024)
print("port", s.getsockname()[1], flush=True)
fd = s.fileno()
child = None
for line in sys.stdin:
    what = line.strip()
    if what == "start":
        # sh's $$ is the pid that exec keeps, as LISTEN_PID must be.
        child = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$@"', "sh", *cmd],
            pass_fds=(3,),
            preexec_fn=lambda: os.dup2(fd, 3),
        )
        print("started", child.pid, flush=True)
    elif what == "stop" and child is not None:
        child.send_signal(signal.SIGTERM)
        print("exited", child.wait(), flush=True)
        child = None
    elif what == "quit":
        break
if child is not None:
    child.kill()
    child.wait()
