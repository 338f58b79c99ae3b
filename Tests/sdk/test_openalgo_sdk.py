"""The official openalgo SDK against the running agent: connect, the three subscription kinds,
unsubscribe, disconnect. These are the calls a trader's strategy makes."""

import threading
import time

import pytest
from openalgo import api

RELIANCE = {"exchange": "NSE", "symbol": "RELIANCE"}
INFY = {"exchange": "NSE", "symbol": "INFY"}
NIFTY_FUTURE = {"exchange": "NFO", "symbol": "NIFTY30DEC25FUT"}


class Recorder:
    """Collects callback payloads from the SDK's reader thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def __call__(self, payload):
        with self.lock:
            self.items.append(payload)

    def count(self):
        with self.lock:
            return len(self.items)

    def snapshot(self):
        with self.lock:
            return list(self.items)

    def wait_until(self, condition, what, timeout=10.0):
        """The payloads once condition(payloads) holds; fails after timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            items = self.snapshot()
            if condition(items):
                return items
            time.sleep(0.05)
        raise AssertionError(f"expected {what} within {timeout} s, got {self.count()} callbacks")

    def wait_for(self, count, timeout=10.0):
        return self.wait_until(lambda items: len(items) >= count, f"{count} callbacks", timeout)


def make_client(agent, key=None):
    return api(api_key=key or agent.api_key, host="http://127.0.0.1:5000", ws_url=agent.url, auto_reconnect=False)


def assert_stops_after_unsubscribe(recorder):
    time.sleep(0.5)  # frames already on the wire may still arrive
    settled = recorder.count()
    time.sleep(1.5)
    assert recorder.count() == settled, "callbacks kept arriving after unsubscribe"


def test_connect_returns_true_and_disconnect_is_clean(agent):
    client = make_client(agent)
    started = time.time()
    assert client.connect() is True
    assert time.time() - started < 2, "authentication must be answered well within the SDK's 5 s"
    assert client.authenticated
    client.disconnect()
    assert client.connected is False
    assert client.authenticated is False


def test_wrong_key_is_refused(agent):
    client = make_client(agent, key="0" * 64)
    assert client.connect() is False
    client.disconnect()


def test_subscribe_ltp(agent):
    client = make_client(agent)
    assert client.connect()
    recorder = Recorder()
    assert client.subscribe_ltp([RELIANCE, INFY], on_data_received=recorder)
    items = recorder.wait_for(6)
    symbols = set()
    for item in items:
        assert item["type"] == "market_data"
        assert item["exchange"] == "NSE"
        assert item["mode"] == 1
        assert isinstance(item["data"]["ltp"], float) and item["data"]["ltp"] > 0
        assert isinstance(item["data"]["timestamp"], int)
        assert abs(item["data"]["timestamp"] / 1000 - time.time()) < 60
        symbols.add(item["symbol"])
    assert symbols == {"RELIANCE", "INFY"}
    ltp = client.get_ltp()
    assert ltp["ltp"]["NSE"]["RELIANCE"]["ltp"] > 0
    assert client.unsubscribe_ltp([RELIANCE, INFY])
    assert_stops_after_unsubscribe(recorder)
    client.disconnect()


def test_subscribe_quote(agent):
    client = make_client(agent)
    assert client.connect()
    recorder = Recorder()
    assert client.subscribe_quote([RELIANCE], on_data_received=recorder)
    items = recorder.wait_for(3)
    for item in items:
        assert item["mode"] == 2 and item["symbol"] == "RELIANCE"
        data = item["data"]
        for key in ("open", "high", "low", "close", "ltp", "volume", "last_trade_quantity", "avg_trade_price",
                    "change", "change_percent", "timestamp"):
            assert key in data, key
        assert data["low"] <= data["ltp"] <= data["high"]
        assert data["volume"] > 0 and data["last_trade_quantity"] > 0 and data["avg_trade_price"] > 0
        assert data["change"] == pytest.approx(data["ltp"] - data["close"], abs=0.011)
    assert client.unsubscribe_quote([RELIANCE])
    assert_stops_after_unsubscribe(recorder)
    client.disconnect()


def test_subscribe_depth(agent):
    client = make_client(agent)
    assert client.connect()
    recorder = Recorder()
    assert client.subscribe_depth([RELIANCE, NIFTY_FUTURE], on_data_received=recorder)
    items = recorder.wait_for(4)
    for item in items:
        assert item["mode"] == 3
        depth = item["data"]["depth"]
        assert len(depth["buy"]) == 5 and len(depth["sell"]) == 5
        for level in depth["buy"] + depth["sell"]:
            assert set(level) == {"price", "quantity", "orders"}
        assert depth["buy"][0]["price"] < depth["sell"][0]["price"]
        assert depth["buy"][0]["price"] > depth["buy"][4]["price"]
    book = client.get_depth()["depth"]["NSE"]["RELIANCE"]
    assert book["ltp"] > 0 and len(book["buyBook"]) >= 5
    assert client.unsubscribe_depth([RELIANCE, NIFTY_FUTURE])
    assert_stops_after_unsubscribe(recorder)
    client.disconnect()


def test_two_clients_do_not_disturb_each_other(agent):
    first, second = make_client(agent), make_client(agent)
    assert first.connect() and second.connect()
    ltp, quote = Recorder(), Recorder()
    first.subscribe_ltp([INFY], on_data_received=ltp)
    second.subscribe_quote([INFY], on_data_received=quote)
    ltp.wait_for(3)
    quote.wait_for(3)
    second.unsubscribe_quote([INFY])
    before = ltp.count()
    ltp.wait_for(before + 3)
    assert all(item["mode"] == 1 for item in ltp.snapshot())
    first.disconnect()
    second.disconnect()


def test_ltp_quote_and_depth_on_the_same_symbols_all_fire(agent):
    """A chart holding LTP and a depth widget holding Depth on the same symbols, in one client: the
    SDK routes callbacks by the frame's mode, so each held mode needs its own frames (with one frame
    per tick, tagged with the highest mode held, the LTP callback never fired)."""
    client = make_client(agent)
    assert client.connect()
    instruments = [RELIANCE, INFY, NIFTY_FUTURE]
    ltp, quote, depth = Recorder(), Recorder(), Recorder()
    try:
        assert client.subscribe_ltp(instruments, on_data_received=ltp)
        assert client.subscribe_quote(instruments, on_data_received=quote)
        assert client.subscribe_depth(instruments[:2], on_data_received=depth)
        for recorder, mode, expected in [(ltp, 1, instruments), (quote, 2, instruments), (depth, 3, instruments[:2])]:
            wanted = {item["symbol"] for item in expected}
            items = recorder.wait_until(lambda items: {item["symbol"] for item in items} == wanted, f"mode {mode} callbacks for {wanted}")
            assert all(item["mode"] == mode for item in items)
    finally:
        client.disconnect()
