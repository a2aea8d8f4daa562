#!/usr/bin/python3
"""An independent WinRM peer for `wec serve --auth basic`: pywinrm (transport='basic') over
HTTPS, the server certificate checked against the test CA (server_cert_validation='validate',
ca_trust_path). Sends the real Windows messages Enumerate -> Heartbeat -> Events to the
subscription's NotifyTo and prints one JSON line per step; a refused password is printed as
{"step": "enumerate", "status": 401}.
"""

import argparse
import json
import re
import sys
import urllib.parse


class Failure(Exception):
    pass


def step(name, **kv):
    print(json.dumps({"step": name, **kv}), flush=True)


def relates_to(text):
    m = re.search(r"<[^>]*RelatesTo[^>]*>([^<]*)<", text)
    return m.group(1) if m else None


def sample_text(samples, name):
    raw = open(samples + name, "rb").read()
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le")
    return raw.decode("utf-8")


def run(args):
    import winrm.exceptions
    import winrm.protocol

    def protocol(url):
        return winrm.protocol.Protocol(endpoint=url, transport="basic", username=args.user,
                                       password=args.password,
                                       server_cert_validation="validate",
                                       ca_trust_path=args.ca)

    s = args.samples
    p = protocol(args.url)
    try:
        text = p.transport.send_message(sample_text(s, "enumerate.utf16")).decode("utf-8")
    except winrm.exceptions.InvalidCredentialsError as e:
        step("enumerate", status=401, error=str(e))
        raise Failure("Enumerate: credentials refused")
    subs = re.findall(r'Name="SubscriptionName">([^<]*)<.*?NotifyTo>\s*<[^>]*Address>([^<]*)<',
                      text, re.S)
    notify = dict(subs).get(args.subscription)
    if not notify:
        raise Failure(f"Enumerate: subscription {args.subscription!r} not listed: {text[:500]}")
    step("enumerate", status=200, subscriptions=[n for n, _ in subs], notify_to=notify)

    # NotifyTo names the collector's public host: keep its path, use the test's address.
    base = urllib.parse.urlsplit(args.url)
    target = urllib.parse.urlsplit(notify)._replace(scheme=base.scheme, netloc=base.netloc)
    p = protocol(urllib.parse.urlunsplit(target))
    text = p.transport.send_message(sample_text(s, "heartbeat.xml")).decode("utf-8")
    if relates_to(text) != "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA":
        raise Failure(f"Heartbeat: RelatesTo {relates_to(text)!r} {text[:300]}")
    step("heartbeat", status=200, relates_to=relates_to(text))
    events = sample_text(s, "events.xml")
    text = p.transport.send_message(events).decode("utf-8")
    mid = re.search(r"<a:MessageID>([^<]*)<", events).group(1)
    if relates_to(text) != mid:
        raise Failure(f"Events: RelatesTo {relates_to(text)!r} (want {mid}) {text[:300]}")
    step("events", status=200, relates_to=relates_to(text), count=events.count("<w:Event "))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ca", required=True, help="PEM bundle that issued the server certificate")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--subscription", required=True)
    args = ap.parse_args()
    args.samples = args.samples.rstrip("/") + "/"
    try:
        run(args)
    except Exception as e:  # noqa: BLE001 - any failure of the peer is reported as a step
        step("failed", error=f"{type(e).__name__}: {e}")
        return 1
    step("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
