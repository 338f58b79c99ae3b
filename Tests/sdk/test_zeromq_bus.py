"""The official openalgo SDK against the agent standing in for OpenAlgo's WebSocket proxy
(`--broker zmq`): a pyzmq PUB socket publishes on the bus exactly as OpenAlgo's broker adapters do,
and the SDK's callbacks receive the ticks and order updates."""

import json
import socket
import threading
import time

import pytest
import zmq

from conftest import start_agent, stop_agent
from test_openalgo_sdk import Recorder, make_client

NIFTY = {"exchange": "NSE_INDEX", "symbol": "NIFTY"}
SOL_INR = {"exchange": "CRYPTO", "symbol": "SOL_INR"}
RELIANCE = {"exchange": "NSE", "symbol": "RELIANCE"}
OPTION = {"exchange": "NFO", "symbol": "NIFTY28APR2425000CE"}

NANOSECONDS = 1795737969836123457  # beyond 2**53: must not pass through a double

MESSAGES = [
    ("NSE_INDEX_NIFTY_LTP", {"symbol": "NIFTY", "exchange": "NSE_INDEX", "mode": "ltp", "ltp": 24350.55, "ltt": 1746171226, "timestamp": NANOSECONDS}),
    ("CRYPTO_SOL_INR_LTP", {"ltp": 12150.5, "timestamp": NANOSECONDS + 1}),
    (
        "NSE_RELIANCE_QUOTE",
        {
            "ltp": 1424.05, "ltt": 1746171226000, "volume": 100000, "open": 1415.0, "high": 1432.5, "low": 1408.0,
            "close": 1418.0, "last_quantity": 50, "average_price": 1420.12, "total_buy_quantity": 5000,
            "total_sell_quantity": 7000, "symbol": "RELIANCE", "exchange": "NSE", "mode": 2, "timestamp": NANOSECONDS + 2,
        },
    ),
    (
        "NFO_NIFTY28APR2425000CE_DEPTH",
        {
            "ltp": 250.5, "oi": 4321, "timestamp": NANOSECONDS + 3,
            "depth": {"buy": [{"price": 250.45, "quantity": 100, "orders": 2}], "sell": [{"price": 250.55, "quantity": 75, "orders": 1}]},
        },
    ),
]

ORDER = {
    "type": "order_update", "user_id": "rajandran", "mode": "live", "broker": "zerodha", "orderid": "250501000123456",
    "symbol": "NHPC", "exchange": "NSE", "action": "BUY", "quantity": 1, "price": 50.0, "order_status": "rejected",
}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def bus_agent():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    running = start_agent({"OPENALGO_BROKER_ZMQ_ENDPOINT": endpoint, "OPENALGO_BROKER_ZMQ_BROKER_NAME": "zerodha"}, ["--broker", "zmq"])
    running.endpoint = endpoint
    yield running
    stop_agent(running)


class Publisher:
    """A PUB socket set up like OpenAlgo's BaseBrokerWebSocketAdapter: it connects to the bus."""

    def __init__(self, endpoint):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.setsockopt(zmq.SNDHWM, 1000)
        self.socket.connect(endpoint)

    def publish(self, topic, data):
        self.socket.send_multipart([topic.encode("utf-8"), json.dumps(data).encode("utf-8")])

    def publish_until(self, messages, done, timeout=15.0):
        """Publishes every 50 ms until done() holds: a new PUB connection drops what it sends
        before the connection is up (ZeroMQ's slow joiner)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for topic, data in messages:
                self.publish(topic, data)
            if done():
                return
            time.sleep(0.05)
        raise AssertionError("the SDK received nothing from the bus within the timeout")

    def close(self):
        self.socket.close(linger=0)
        self.context.term()


def test_sdk_receives_bus_ticks_in_every_mode(bus_agent):
    client = make_client(bus_agent)
    assert client.connect()
    publisher = Publisher(bus_agent.endpoint)
    ltp, quote, depth = Recorder(), Recorder(), Recorder()
    try:
        assert client.subscribe_ltp([NIFTY, SOL_INR], on_data_received=ltp)
        assert client.subscribe_quote([RELIANCE], on_data_received=quote)
        assert client.subscribe_depth([OPTION], on_data_received=depth)
        symbols = lambda recorder: {item["symbol"] for item in recorder.snapshot()}
        publisher.publish_until(
            MESSAGES, lambda: symbols(ltp) == {"NIFTY", "SOL_INR"} and quote.count() > 0 and depth.count() > 0
        )

        by_symbol = {item["symbol"]: item for item in ltp.snapshot()}
        nifty = by_symbol["NIFTY"]
        assert nifty["exchange"] == "NSE_INDEX" and nifty["mode"] == 1
        assert nifty["data"]["ltp"] == 24350.55
        assert nifty["data"]["timestamp"] == NANOSECONDS
        assert nifty["data"]["ltt"] == 1746171226
        sol = by_symbol["SOL_INR"]
        assert sol["exchange"] == "CRYPTO" and sol["data"]["ltp"] == 12150.5 and sol["data"]["timestamp"] == NANOSECONDS + 1

        reliance = quote.snapshot()[0]
        assert reliance["symbol"] == "RELIANCE" and reliance["exchange"] == "NSE" and reliance["mode"] == 2
        data = reliance["data"]
        assert (data["ltp"], data["open"], data["high"], data["low"], data["close"]) == (1424.05, 1415.0, 1432.5, 1408.0, 1418.0)
        assert data["volume"] == 100000 and data["timestamp"] == NANOSECONDS + 2
        # The adapters' spellings arrive under the SDK's too, so it shows values instead of zeros.
        assert data["last_trade_quantity"] == 50 and data["avg_trade_price"] == 1420.12
        assert data["change"] == 6.05

        option = depth.snapshot()[0]
        assert option["symbol"] == "NIFTY28APR2425000CE" and option["exchange"] == "NFO" and option["mode"] == 3
        assert option["data"]["ltp"] == 250.5 and option["data"]["timestamp"] == NANOSECONDS + 3
        assert option["data"]["depth"] == MESSAGES[3][1]["depth"]
    finally:
        publisher.close()
        client.disconnect()


def test_sdk_receives_order_updates_from_the_bus(bus_agent):
    client = make_client(bus_agent)
    assert client.connect()
    publisher = Publisher(bus_agent.endpoint)
    orders = Recorder()
    try:
        assert client.subscribe_orders(on_order_update=orders)
        publisher.publish_until([("ZERODHA_rajandran_orders", ORDER)], lambda: orders.count() > 0)
        assert orders.snapshot()[0] == ORDER
    finally:
        publisher.close()
        client.disconnect()
