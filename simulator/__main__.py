"""`python -m simulator --port 8765 [--state file.json] [--seed-demo]`"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading

from .contract import ContractError, parse_offset
from .generate import seed_demo
from .server import SimulatorServer
from .store import StateFileError, Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Sales-channel simulator (channel-api.md) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--state", help="JSON file to load the state from and save it to")
    parser.add_argument(
        "--seed-demo",
        action="store_true",
        help="channels FLIPKART, AMAZON, PAYTM, MYSHOP (user/pass) with a few orders",
    )
    parser.add_argument("--tz", default="+05:30", help="offset of the times it writes")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        store = Store(state_path=args.state, tz=parse_offset(args.tz))
    except (StateFileError, ContractError) as error:
        print(f"simulator: {error}", file=sys.stderr)
        return 2
    if args.seed_demo:
        seed_demo(store)
    try:
        server = SimulatorServer(port=args.port, store=store, verbose=args.verbose)
        server._bind()
    except OSError as error:
        print(f"simulator: cannot listen on 127.0.0.1:{args.port} ({error})", file=sys.stderr)
        return 2

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server._httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"Channel simulator on {server.url}  (page: {server.url}/, control: /_control)")
    for channel in store.channel_list():
        print(
            f"  {channel['code']:<10} {server.channel_url(channel['code'])}  "
            f"{channel['username']}/{channel['password']}  {channel['orders']} orders"
        )
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
