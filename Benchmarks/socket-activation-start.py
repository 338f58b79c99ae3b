#!/usr/bin/env python3
"""Times the agent's start under systemd socket activation: a client connects before the agent
exists, and the WebSocket upgrade reply and READY=1 are timed from that connect.
Usage: Benchmarks/socket-activation-start.py [AGENT] [RUNS]  (default .build/release/openalgo-agent, 10)"""
import os, socket, subprocess, sys, time, tempfile, signal
agent = sys.argv[1] if len(sys.argv) > 1 else ".build/release/openalgo-agent"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
first, ready = [], []
for i in range(runs):
    d = tempfile.mkdtemp(prefix="oa-b-", dir="/tmp")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); n.bind(d + "/n.sock"); n.settimeout(10)
    port = 28800 + i
    env = dict(os.environ, NOTIFY_SOCKET=d + "/n.sock", OPENALGO_API_KEY="k", HOME=d, XDG_RUNTIME_DIR=d, XDG_CONFIG_HOME=d)
    p = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "-l", d + "/agent.sock", "--fdname=ws:ipc",
                          "-E", "NOTIFY_SOCKET", "-E", "OPENALGO_API_KEY", "-E", "HOME", "-E", "XDG_RUNTIME_DIR", "-E", "XDG_CONFIG_HOME", agent],
                         env=env, stderr=subprocess.DEVNULL)
    while True:
        try:
            c = socket.create_connection(("127.0.0.1", port)); break
        except ConnectionRefusedError:
            time.sleep(0.005)
    t0 = time.monotonic()
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    data = c.recv(4096)
    t1 = time.monotonic()
    assert data.startswith(b"HTTP/1.1 101"), data
    while True:
        m = n.recv(4096)
        if m.startswith(b"READY=1"): break
    t2 = time.monotonic()
    first.append((t1 - t0) * 1000); ready.append((t2 - t0) * 1000)
    p.send_signal(signal.SIGTERM); p.wait(10); c.close(); n.close()
first.sort(); ready.sort()
print(f"first client served after exec: median {first[len(first)//2]:.0f} ms (min {first[0]:.0f}, max {first[-1]:.0f}); READY=1 median {ready[len(ready)//2]:.0f} ms")
