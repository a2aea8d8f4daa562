"""What the independent WEF peers of tests/interop share (no wec code): the JSON step lines they
print, reading the real Windows messages, the checks on the collector's replies, and the pywinrm
sequence Enumerate -> Heartbeat -> Events of winrm_basic_client.py and winrm_ntlm_client.py.

Imported by the scripts of this folder (Python puts a script's own folder first on sys.path).
"""
import json
import re
import urllib.parse

# The MessageIDs of the real Windows messages in tests/data/wsman, answered by RelatesTo.
ENUMERATE_ID = "uuid:E9802257-6A7D-4C0D-BFA4-E81C7B1C447E"
HEARTBEAT_ID = "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA"


class Failure(Exception):
    pass


def step(name, **kv):
    """One JSON object per step on stdout, read by the C++ test that started the peer."""
    print(json.dumps({"step": name, **kv}), flush=True)


def relates_to(text):
    m = re.search(r"<[^>]*RelatesTo[^>]*>([^<]*)<", text)
    return m.group(1) if m else None


def message_id(text):
    return re.search(r"<a:MessageID>([^<]*)<", text).group(1)


def event_count(text):
    return text.count("<w:Event ")


def utf16(xml_text):
    """UTF-16LE with a BOM, as Windows sends SOAP."""
    return b"\xff\xfe" + xml_text.encode("utf-16-le")


def sample_text(samples, name):
    """A message of the samples folder (`samples` ends with '/') as text (UTF-16 with a BOM or
    UTF-8)."""
    with open(samples + name, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le")
    return raw.decode("utf-8")


def subscriptions(text):
    """The (name, NotifyTo address) pairs of an EnumerateResponse."""
    return re.findall(r'Name="SubscriptionName">([^<]*)<.*?NotifyTo>\s*<[^>]*Address>([^<]*)<',
                      text, re.S)


def notify_to(subs, name, text):
    """The NotifyTo of subscription `name`; Failure when the enumeration does not list it."""
    notify = dict(subs).get(name)
    if not notify:
        raise Failure(f"Enumerate: subscription {name!r} not listed: {text[:500]}")
    return notify


def same_host(url, notify):
    """NotifyTo names the collector's public host: its path on the test's scheme and address."""
    base = urllib.parse.urlsplit(url)
    target = urllib.parse.urlsplit(notify)._replace(scheme=base.scheme, netloc=base.netloc)
    return urllib.parse.urlunsplit(target)


def pywinrm_sequence(protocol, args, before_events=None):
    """pywinrm's Protocol (`protocol(url)` makes one) through the real Windows messages:
    Enumerate on args.url (a refused password is the step {"step": "enumerate", "status": 401}),
    then Heartbeat and Events on the subscription's NotifyTo. `before_events(p)` runs before the
    Events are sent on `p`. Returns the Protocol of the NotifyTo connection."""
    import winrm.exceptions

    s = args.samples
    p = protocol(args.url)
    try:
        text = p.transport.send_message(sample_text(s, "enumerate.utf16")).decode("utf-8")
    except winrm.exceptions.InvalidCredentialsError as e:
        step("enumerate", status=401, error=str(e))
        raise Failure("Enumerate: credentials refused")
    subs = subscriptions(text)
    notify = notify_to(subs, args.subscription, text)
    step("enumerate", status=200, subscriptions=[n for n, _ in subs], notify_to=notify)

    p = protocol(same_host(args.url, notify))
    text = p.transport.send_message(sample_text(s, "heartbeat.xml")).decode("utf-8")
    if relates_to(text) != HEARTBEAT_ID:
        raise Failure(f"Heartbeat: RelatesTo {relates_to(text)!r} {text[:300]}")
    step("heartbeat", status=200, relates_to=relates_to(text))
    events = sample_text(s, "events.xml")
    if before_events:
        before_events(p)
    text = p.transport.send_message(events).decode("utf-8")
    mid = message_id(events)
    if relates_to(text) != mid:
        raise Failure(f"Events: RelatesTo {relates_to(text)!r} (want {mid}) {text[:300]}")
    step("events", status=200, relates_to=relates_to(text), count=event_count(events))
    return p


def main_steps(run, args):
    """Runs `run(args)`; any failure of the peer is reported as the step "failed" (exit 1), a
    success as the step "done" (exit 0)."""
    try:
        run(args)
    except Exception as e:  # noqa: BLE001 - any failure of the peer is reported as a step
        step("failed", error=f"{type(e).__name__}: {e}")
        return 1
    step("done")
    return 0
