#!/usr/bin/env python3
"""Follow a Switchboard gateway over its native ZeroMQ feed, with nothing but pyzmq and msgpack.

The Clone pattern: subscribe first (ZeroMQ queues what arrives meanwhile), take a snapshot, then apply only the
events newer than it. Each event carries `prev`, the revision of the previous change to its service: when `prev` is
above what we know of that service (the snapshot's rev, or the last event of that service we applied), an event
was dropped; a new epoch means another store. Either way: take a snapshot again.

    pip install pyzmq msgpack
    python3 examples/python_client.py --service billing
    python3 examples/python_client.py --pub tcp://127.0.0.1:7701 --snapshot tcp://127.0.0.1:7702
"""
import argparse
import sys

import msgpack
import zmq


def take_snapshot(sock, service):
    """One request, one frame back: {epoch, rev, providers, stale} as plain MessagePack."""
    sock.send_multipart([b"snapshot", service.encode()])
    if not sock.poll(5000):
        sys.exit("no answer from the snapshot endpoint within 5 s")
    snap = msgpack.unpackb(sock.recv(), raw=False)
    providers = {p["id"]: p for p in snap["providers"]}
    print(f"snapshot epoch={snap['epoch']} rev={snap['rev']} providers={len(providers)}", flush=True)
    return snap["epoch"], snap["rev"], providers


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pub", default="tcp://127.0.0.1:7701", help="the gateway's PUB feed")
    parser.add_argument("--snapshot", default="tcp://127.0.0.1:7702", help="the gateway's snapshot endpoint")
    parser.add_argument("--service", default="", help="one service (default: every service)")
    parser.add_argument("--count", type=int, default=0, help="exit after this many events (0: run forever)")
    args = parser.parse_args()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(args.pub)
    # Topics are "svc/<service>/"; "svc/" is everything. The trailing slash keeps "bill" from matching "billing".
    sub.setsockopt(zmq.SUBSCRIBE, f"svc/{args.service}/".encode() if args.service else b"svc/")
    req = ctx.socket(zmq.DEALER)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(args.snapshot)

    # Give the subscription a moment to reach the gateway; anything missed anyway shows up as a gap below.
    sub.poll(200)
    epoch, rev, providers = take_snapshot(req, args.service)

    seen = 0
    last = {}  # service -> revision of the last change we applied to it
    try:
        while args.count == 0 or seen < args.count:
            _topic, body = sub.recv_multipart()
            event = msgpack.unpackb(body, raw=False)
            if event["epoch"] == epoch and event["rev"] <= rev:
                continue  # already in the snapshot
            known = last.get(event["service"], rev)
            if event["epoch"] != epoch or event.get("prev", 0) > known:
                print(f"gap: {event['service']} changed at rev {event.get('prev')} and we know rev {known}; resyncing", flush=True)
                epoch, rev, providers = take_snapshot(req, args.service)
                last = {}
                if event["epoch"] != epoch or event["rev"] <= rev:
                    continue
            provider = event["provider"]
            if event["change"] == "deregistered":
                providers.pop(provider["id"], None)
            else:
                providers[provider["id"]] = provider
            last[event["service"]] = event["rev"]
            seen += 1
            print(
                f"rev={event['rev']} {event['change']:<12} {event['service']} {provider['id']} "
                f"{provider['host']}:{provider['port']} state={provider['state']} (providers: {len(providers)})",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        req.close()
        ctx.term()


if __name__ == "__main__":
    main()
