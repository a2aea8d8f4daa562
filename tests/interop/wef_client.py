#!/usr/bin/python3
"""An independent WEF source for interop tests, written on python3-gssapi (no wec code).

It replays the real Windows messages of shared/samples/windows against a collector, with
Kerberos message encryption done by MIT GSSAPI through python-gssapi, in either of the two
forms seen in the wild:
  --mech kerberos  Authorization: Kerberos, HTTP-Kerberos-session-encrypted (what Windows sends)
  --mech spnego    Authorization: Negotiate, HTTP-SPNEGO-session-encrypted (pywinrm, Server 2025)
and --tab puts a TAB before the MIME part headers (pywinrm's form).

Sequence: auth -> Enumerate -> End; new connection to NotifyTo -> auth -> Heartbeat (Windows' own
SLDC bytes) -> Events (21 real events) ; new connection -> Enumerate (bookmark must be the one sent)
-> End; new connection -> SubscriptionEnd. Prints one JSON object per step on stdout and exits 1
at the first step whose answer is wrong.

Every response is checked against the protocol's HTTP rules: never compressed (no Content-Encoding
header, even though the requests after subscribing carry Content-Encoding: SLDC), and a SOAP reply
is UTF-16LE with a BOM and no XML declaration. End and SubscriptionEnd must be answered with an empty
body; their steps report the HTTP status and the body length.
"""
import argparse
import base64
import http.client
import re
import struct
import sys
import urllib.parse

import gssapi
from gssapi.raw import IOV, IOVBufferType, unwrap_iov, wrap_iov
from wef_peer import (ENUMERATE_ID, HEARTBEAT_ID, Failure, event_count, message_id, relates_to,
                      step, subscriptions, utf16)

KRB5_OID = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2")
SPNEGO_OID = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
BOUNDARY = "Encrypted Boundary"


def check_not_compressed(what, resp):
    """Responses are never compressed: no Content-Encoding header at all."""
    encoding = resp.getheader("Content-Encoding")
    if encoding is not None:
        raise Failure(f"{what}: response carries Content-Encoding: {encoding!r} "
                      "(responses must never be compressed)")


def check_no_declaration(what, text):
    """A SOAP reply starts with its Envelope element: no XML declaration, nothing before it."""
    if text.lstrip().startswith("<?xml"):
        raise Failure(f"{what}: reply starts with an XML declaration: {text[:60]!r}")
    if not re.match(r"<([A-Za-z_][\w.-]*:)?Envelope[\s>]", text):
        raise Failure(f"{what}: reply does not start with the Envelope element: {text[:60]!r}")


class Connection:
    def __init__(self, url, args):
        self.url = urllib.parse.urlsplit(url)
        self.args = args
        self.http = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
        self.scheme = "Kerberos" if args.mech == "kerberos" else "Negotiate"
        self.protocol = ("application/HTTP-Kerberos-session-encrypted" if args.mech == "kerberos"
                         else "application/HTTP-SPNEGO-session-encrypted")
        name = gssapi.Name(args.service, gssapi.NameType.hostbased_service)
        mech = KRB5_OID if args.mech == "kerberos" else SPNEGO_OID
        flags = [gssapi.RequirementFlag.mutual_authentication,
                 gssapi.RequirementFlag.confidentiality, gssapi.RequirementFlag.integrity]
        self.ctx = gssapi.SecurityContext(name=name, mech=mech, flags=flags, usage="initiate")
        self.path = self.url.path

    def authenticate(self, sldc_header=False):
        token = self.ctx.step()
        headers = {"Authorization": f"{self.scheme} {base64.b64encode(token).decode()}",
                   "Content-Length": "0", "Connection": "Keep-Alive",
                   "User-Agent": "Microsoft WinRM Client",
                   "Content-Type": "application/soap+xml;charset=UTF-16"}
        if sldc_header:
            headers["Content-Encoding"] = "SLDC"
        self.http.request("POST", self.path, body=b"", headers=headers)
        resp = self.http.getresponse()
        body = resp.read()
        www = resp.getheader("WWW-Authenticate", "")
        if resp.status != 200:
            raise Failure(f"auth: HTTP {resp.status} {body[:200]!r}")
        check_not_compressed("auth", resp)
        if body:
            raise Failure(f"auth: the answer to the empty POST has a {len(body)}-byte body")
        if not www.startswith(self.scheme + " "):
            raise Failure(f"auth: WWW-Authenticate {www!r} is not in scheme {self.scheme}")
        self.ctx.step(base64.b64decode(www.split(" ", 1)[1]))
        if not self.ctx.complete:
            raise Failure("auth: context not complete after the server's token")
        return {"status": resp.status, "scheme": self.scheme, "body_length": len(body)}

    def seal(self, plaintext):
        iov = IOV(IOVBufferType.header, plaintext, IOVBufferType.padding, std_layout=False)
        wrap_iov(self.ctx, iov, confidential=True)
        header = iov[0].value
        data = iov[1].value + (iov[2].value or b"")
        tab = "\t" if self.args.tab else ""
        body = (f"--{BOUNDARY}\r\n{tab}Content-Type: {self.protocol}\r\n"
                f"{tab}OriginalContent: type=application/soap+xml;charset=UTF-16;Length={len(plaintext)}\r\n"
                f"--{BOUNDARY}\r\n{tab}Content-Type: application/octet-stream\r\n").encode()
        body += struct.pack("<I", len(header)) + header + data + f"--{BOUNDARY}--\r\n".encode()
        ctype = f'multipart/encrypted;protocol="{self.protocol}";boundary="{BOUNDARY}"'
        return body, ctype

    def unseal(self, body, ctype):
        if "multipart/encrypted" not in ctype:
            raise Failure(f"reply is not multipart/encrypted: {ctype!r}")
        if self.protocol not in ctype:
            raise Failure(f"reply protocol is not {self.protocol}: {ctype!r}")
        marker = b"Content-Type: application/octet-stream\r\n"
        at = body.find(marker)
        if at < 0:
            raise Failure("reply has no octet-stream part")
        tabbed = body[at - 1:at] == b"\t"
        if tabbed != self.args.tab:
            raise Failure(f"reply MIME form (tab={tabbed}) differs from the request's (tab={self.args.tab})")
        m = re.search(rb"Length=(\d+)", body)
        length = int(m.group(1))
        pos = at + len(marker)
        (hlen,) = struct.unpack("<I", body[pos:pos + 4])
        header = body[pos + 4:pos + 4 + hlen]
        end = body.rfind(f"--{BOUNDARY}--".encode())
        data = body[pos + 4 + hlen:end]
        iov = IOV((IOVBufferType.header, False, header), (IOVBufferType.data, False, data),
                  std_layout=False)
        unwrap_iov(self.ctx, iov)
        plain = iov[1].value
        if len(plain) != length:
            raise Failure(f"OriginalContent Length={length} but {len(plain)} bytes decrypted")
        return plain

    def post(self, what, soap_bytes, sldc_header=False, path=None):
        """POSTs one sealed SOAP body; returns (HTTP status, decoded reply text, raw body length)."""
        body, ctype = self.seal(soap_bytes)
        headers = {"Content-Type": ctype, "Content-Length": str(len(body)),
                   "Connection": "Keep-Alive", "User-Agent": "Microsoft WinRM Client"}
        if sldc_header:
            headers["Content-Encoding"] = "SLDC"
        self.http.request("POST", path or self.path, body=body, headers=headers)
        resp = self.http.getresponse()
        raw = resp.read()
        check_not_compressed(what, resp)
        text = ""
        if raw:
            plain = self.unseal(raw, resp.getheader("Content-Type", ""))
            if not plain.startswith(b"\xff\xfe"):
                raise Failure(f"{what}: reply is not UTF-16LE with a BOM")
            text = plain[2:].decode("utf-16-le")
            check_no_declaration(what, text)
        return resp.status, text, len(raw)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, help="GPO Server URL, e.g. http://127.0.0.1:PORT/wsman/SubscriptionManager/WEC")
    ap.add_argument("--service", default="HTTP@srv.windomain.local", help="hostbased service name")
    ap.add_argument("--mech", choices=["kerberos", "spnego"], default="kerberos")
    ap.add_argument("--tab", action="store_true", help="TAB before MIME part headers")
    ap.add_argument("--samples", required=True, help="folder with the real Windows messages")
    ap.add_argument("--subscription", required=True, help="name of the subscription to follow")
    args = ap.parse_args()
    s = args.samples.rstrip("/") + "/"

    try:
        # 1. Enumerate on the manager URL (Windows' exact UTF-16 bytes), then End.
        c = Connection(args.url, args)
        step("auth", **c.authenticate())
        enum_bytes = open(s + "enumerate.utf16", "rb").read()
        status, text, _ = c.post("Enumerate", enum_bytes)
        if status != 200 or "EnumerateResponse" not in text:
            raise Failure(f"Enumerate: HTTP {status} {text[:300]}")
        if relates_to(text) != ENUMERATE_ID:
            raise Failure(f"Enumerate: RelatesTo {relates_to(text)!r}")
        subs = subscriptions(text)
        notify = dict(subs).get(args.subscription)
        if not notify:
            raise Failure(f"Enumerate: subscription {args.subscription!r} not listed: {subs}")
        step("enumerate", status=status, subscriptions=[n for n, _ in subs], notify_to=notify,
             bookmark=("RecordId=" in text))
        status, text, length = c.post("End", utf16(open(s + "end.xml").read()))
        if status not in (200, 204):
            raise Failure(f"End: HTTP {status}")
        if length:
            raise Failure(f"End: HTTP {status} with a {length}-byte body (must be empty)")
        step("end", status=status, body_length=length)
        c.http.close()

        # 2. New connection to NotifyTo: Heartbeat (Windows' own SLDC body) and Events.
        notify_path = urllib.parse.urlsplit(notify).path
        c = Connection(args.url, args)
        c.path = notify_path
        step("auth", **c.authenticate(sldc_header=True))
        status, text, _ = c.post("Heartbeat", open(s + "heartbeat.sldc", "rb").read(), sldc_header=True)
        if status != 200 or relates_to(text) != HEARTBEAT_ID:
            raise Failure(f"Heartbeat: HTTP {status} RelatesTo {relates_to(text)!r} {text[:300]}")
        step("heartbeat", status=status, relates_to=relates_to(text))
        events = open(s + "events.xml").read()
        # Sent uncompressed with Content-Encoding: SLDC, as Windows does for small bodies.
        status, text, _ = c.post("Events", utf16(events), sldc_header=True)
        mid = message_id(events)
        if status != 200 or relates_to(text) != mid:
            raise Failure(f"Events: HTTP {status} RelatesTo {relates_to(text)!r} (want {mid}) {text[:300]}")
        step("events", status=status, relates_to=relates_to(text), count=event_count(events))
        c.http.close()

        # 3. Enumerate again: the bookmark of the Events batch is offered back.
        c = Connection(args.url, args)
        step("auth", **c.authenticate())
        status, text, _ = c.post("re-Enumerate", enum_bytes)
        m = re.search(r'<Bookmark Channel="([^"]*)" RecordId="(\d+)"', text)
        if status != 200 or not m:
            raise Failure(f"re-Enumerate: HTTP {status}, no bookmark in {text[:2000]}")
        step("reenumerate", status=status, bookmark_channel=m.group(1), bookmark_record=int(m.group(2)))
        c.http.close()

        # 4. SubscriptionEnd from the source.
        c = Connection(args.url, args)
        c.path = notify_path
        step("auth", **c.authenticate(sldc_header=True))
        status, text, length = c.post("SubscriptionEnd", utf16(open(s + "subscription-end.xml").read()),
                                      sldc_header=True)
        if status not in (200, 204):
            raise Failure(f"SubscriptionEnd: HTTP {status} {text[:300]}")
        if length:
            raise Failure(f"SubscriptionEnd: HTTP {status} with a {length}-byte body (must be empty)")
        step("subscription_end", status=status, body_length=length)
    except (Failure, gssapi.exceptions.GSSError, OSError) as e:
        step("failed", error=str(e))
        return 1
    step("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
