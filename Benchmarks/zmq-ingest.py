"""Ingest throughput of the zmq feed: starts the agent with --broker zmq on a free endpoint, publishes
N Quote messages (Angel-shaped bodies, 100 symbols, no subscribers) from a pyzmq PUB socket as fast
as it can, and reads the agent's ticks_in counter (oactl call metrics) until every message is in.

Usage: .build/sdk-venv/bin/python Benchmarks/zmq-ingest.py [.build/release/openalgo-agent .build/release/oactl]
"""

import json, os, socket, subprocess, sys, tempfile, time, zmq

binary = sys.argv[1] if len(sys.argv) > 1 else ".build/release/openalgo-agent"
oactl = sys.argv[2] if len(sys.argv) > 2 else ".build/release/oactl"
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
home = tempfile.mkdtemp(prefix="oa-zmq-bench-")
sock = os.path.join(home, "agent.sock")
env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/c", OPENALGO_API_KEY="k" * 64,
           OPENALGO_BROKER_ZMQ_ENDPOINT=f"tcp://127.0.0.1:{port}")
agent = subprocess.Popen([binary, "serve", "--port", "0", "--ipc-socket", sock, "--broker", "zmq", "--log-level", "warning"], env=env)
time.sleep(1.5)
def metrics():
    out = subprocess.run([oactl, "--socket", sock, "call", "metrics"], capture_output=True, text=True).stdout
    return json.loads(out)
ctx = zmq.Context(); pub = ctx.socket(zmq.PUB); pub.setsockopt(zmq.SNDHWM, 0); pub.connect(f"tcp://127.0.0.1:{port}")
time.sleep(0.5)
body = json.dumps({"ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0, "close": 1418.0,
    "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000, "total_sell_quantity": 7000, "symbol": "RELIANCE",
    "exchange": "NSE", "mode": 2, "timestamp": 1795737969836}).encode()
topics = [f"NSE_SYM{i}_QUOTE".encode() for i in range(100)]
N = 400_000
before = metrics()["ticks_in"]
start = time.time()
for i in range(N):
    pub.send_multipart([topics[i % 100], body])
sent = time.time()
while True:
    got = metrics()["ticks_in"] - before
    if got >= N or time.time() - sent > 20: break
    time.sleep(0.05)
done = time.time()
print(f"published {N} in {sent-start:.2f} s ({N/(sent-start):.0f}/s); agent ingested {got} by {done-start:.2f} s ({got/(done-start):.0f}/s)")
agent.terminate(); agent.wait()
