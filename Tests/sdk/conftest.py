"""Starts the built openalgo-agent for the SDK tests (the simulator feed, or the ZeroMQ bus for
test_zeromq_bus.py) and tears it down after."""

import os
import re
import secrets
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RunningAgent:
    def __init__(self, process, port, api_key, log_path):
        self.process = process
        self.port = port
        self.api_key = api_key
        self.log_path = log_path

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


def start_agent(extra_env, extra_args=()):
    """Starts the built agent on a free WebSocket port with its own HOME and API key."""
    binary = os.environ.get("OPENALGO_AGENT_BIN", os.path.join(REPO, ".build", "debug", "openalgo-agent"))
    if not os.path.exists(binary):
        pytest.fail(f"agent binary not found at {binary}; build it with 'swift build' first")
    home = tempfile.mkdtemp(prefix="oa-sdk-home-")
    api_key = secrets.token_hex(32)
    env = dict(os.environ)
    env.update({"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"), "OPENALGO_API_KEY": api_key})
    env.update(extra_env)
    log_path = os.path.join(home, "agent.log")
    log = open(log_path, "w", encoding="utf-8")
    # A private local socket, so agents of other tests (or a running agent) do not collide.
    command = [binary, "serve", "--port", "0", "--ipc-socket", os.path.join(home, "agent.sock"), *extra_args]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    port = None
    deadline = time.time() + 30
    while time.time() < deadline and port is None:
        if process.poll() is not None:
            break
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            match = re.search(r"address=ws://127\.0\.0\.1:(\d+)", handle.read())
        if match:
            port = int(match.group(1))
        else:
            time.sleep(0.1)
    if port is None:
        process.kill()
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            pytest.fail("agent did not start:\n" + handle.read())
    running = RunningAgent(process, port, api_key, log_path)
    running.log_file = log
    return running


def stop_agent(running):
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        pytest.fail("agent did not stop within 10 s of SIGTERM")
    running.log_file.close()
    assert running.process.returncode == 0, f"agent exited with {running.process.returncode}:\n{running.log()}"


@pytest.fixture(scope="session")
def agent():
    running = start_agent({"OPENALGO_BROKER_SIMULATOR_TICKS_PER_SECOND": "20"})
    yield running
    stop_agent(running)
