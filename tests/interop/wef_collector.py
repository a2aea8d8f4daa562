#!/usr/bin/python3
"""An independent WEF collector for interop tests (no wec code; written from the protocol facts).

HTTP/1.1 on 127.0.0.1 (port 0: the first line on stdout is `LISTENING <port>`), keep-alive, one
security context per connection:
  - `Authorization: Kerberos` (raw krb5 GSS tokens) and `Authorization: Negotiate` (SPNEGO over
    Kerberos or gss-ntlmssp, or a raw NTLMSSP token as Windows sends it), with python3-gssapi;
    the keytab is KRB5_KTNAME (or --keytab), NTLM accounts come from NTLM_USER_FILE;
  - multipart/encrypted bodies (HTTP-Kerberos-session-encrypted / HTTP-SPNEGO-session-encrypted):
    Kerberos unsealed with unwrap_iov over [HEADER, DATA], NTLM with unwrap(signature || sealed);
    replies sealed the same way, in the client's form (protocol string, TAB before part headers);
  - SLDC (ECMA-321) decompression written here from the format description;
  - UTF-16LE SOAP parsed with xml.etree, each message's shape checked (Enumerate, Heartbeat,
    Events, SubscriptionEnd, End): a violation is answered 400 and recorded.

One subscription is offered (NotifyTo = this collector; its w:Bookmark is the last BookmarkList
accepted from that client and MachineID, none at first). Each SOAP message received is recorded as
one JSON line in --record: mechanism, client, action, machine, events, record_ids, computers,
bookmark, status, violations. `--fail-first-events N` answers 503 to the first N Events messages
(the client must resend them). `--self-test-sldc DIR` decodes every X.sldc of DIR and compares it
with X.out (or X.utf16), then exits.
"""
import argparse
import base64
import json
import os
import re
import struct
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "e": "http://schemas.xmlsoap.org/ws/2004/08/eventing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "m": "http://schemas.microsoft.com/wbem/wsman/1/machineid",
    "ev": "http://schemas.microsoft.com/win/2004/08/events/event",
}
ACTION_ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
ACTION_EVENTS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
ACTION_HEARTBEAT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Heartbeat"
ACTION_END = "http://schemas.microsoft.com/wbem/wsman/1/wsman/End"
ACTION_SUB_END = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscriptionEnd"
ACTION_EVENT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Event"
RESOURCE_SUBSCRIPTION = "http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
PROTO_KRB = "application/HTTP-Kerberos-session-encrypted"
PROTO_SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = "Encrypted Boundary"
OID_KRB5 = "1.2.840.113554.1.2.2"
OID_SPNEGO = "1.3.6.1.5.5.2"
OID_NTLM = "1.3.6.1.4.1.311.2.2.10"


# ---- SLDC (ECMA-321) -----------------------------------------------------------------------

class SldcError(Exception):
    pass


def sldc_decompress(data, limit=64 << 20):
    """One SLDC record -> bytes. Bits MSB first; 1024-byte history addressed absolutely.

    Each symbol (at most 23 bits) is read from a 32-bit window taken at its first byte; a copy
    from the history moves as slices unless it reads bytes it writes itself."""
    nbits = len(data) * 8
    padded = bytes(data) + b"\0\0\0\0"
    word = struct.Struct(">I").unpack_from
    pos = 0
    out = bytearray()
    hist = bytearray(1024)
    hpos = 0
    scheme = 0  # no scheme until the first Reset/Scheme control symbol

    def bits(w, used, n):  # the n bits after the first `used` of the 32-bit window w
        return (w >> (32 - used - n)) & ((1 << n) - 1)

    while True:
        left = nbits - pos
        if left <= 0:
            raise SldcError("no End of Record")
        w = word(padded, pos >> 3)[0] << (pos & 7) & 0xFFFFFFFF
        if left >= 13 and w >> 23 == 0x1FF:
            code = (w >> 19) & 0xF
            pos += 13
            if code == 0x0:  # Flush: pad to the next byte boundary
                pos = (pos + 7) // 8 * 8
            elif code == 0x1:
                scheme = 1
            elif code == 0x2:
                scheme = 2
            elif code == 0x3:  # File Mark
                pass
            elif code == 0x4:  # End of Record
                return bytes(out)
            elif code in (0x5, 0x6):
                hist = bytearray(1024)
                hpos = 0
                scheme = 1 if code == 0x5 else 2
            elif code == 0xF:  # End Marker
                return bytes(out)
            else:
                raise SldcError(f"reserved control symbol {code:04b} at bit {pos - 13}")
            continue
        if scheme == 1:
            if w >> 31 == 0:  # literal: 0 + 8 bits
                if left < 9:
                    raise SldcError(f"truncated at bit {pos}")
                b = (w >> 23) & 0xFF
                pos += 9
                out.append(b)
                hist[hpos] = b
                hpos = (hpos + 1) & 1023
            else:  # copy: 1, the count's prefix and bits, 10 bits of displacement
                if not w & 1 << 30:
                    used, count = 3, 2 + bits(w, 2, 1)
                elif not w & 1 << 29:
                    used, count = 5, 4 + bits(w, 3, 2)
                elif not w & 1 << 28:
                    used, count = 7, 8 + bits(w, 4, 3)
                elif not w & 1 << 27:
                    used, count = 9, 16 + bits(w, 5, 4)
                else:
                    v = bits(w, 5, 8)
                    if left >= 13 and v >= 0xF0:
                        raise SldcError(f"match count byte {v:#x} at bit {pos + 5}")
                    used, count = 13, 32 + v
                if left < used + 10:
                    raise SldcError(f"truncated at bit {pos}")
                disp = bits(w, used, 10)
                pos += used + 10
                if 0 < (hpos - disp) & 1023 < count:  # reads what it writes: byte by byte
                    for i in range(count):
                        b = hist[(disp + i) & 1023]
                        out.append(b)
                        hist[hpos] = b
                        hpos = (hpos + 1) & 1023
                else:
                    chunk = (hist + hist)[disp:disp + count] if disp + count > 1024 \
                        else hist[disp:disp + count]
                    out += chunk
                    first = min(count, 1024 - hpos)
                    hist[hpos:hpos + first] = chunk[:first]
                    hist[0:count - first] = chunk[first:]
                    hpos = (hpos + count) & 1023
        elif scheme == 2:
            if left < 8:
                raise SldcError(f"truncated at bit {pos}")
            b = w >> 24
            pos += 8
            if b == 0xFF:
                if left < 9:
                    raise SldcError(f"truncated at bit {pos}")
                if (w >> 23) & 1:
                    raise SldcError("scheme 2: 0xFF not followed by a 0 bit")
                pos += 1
            out.append(b)
            hist[hpos] = b
            hpos = (hpos + 1) & 1023
        else:
            raise SldcError("data before any scheme was chosen")
        if len(out) > limit:
            raise SldcError("output larger than the limit")


def self_test_sldc(directories):
    ok = 0
    for directory, name in sorted((d, n) for d in directories for n in os.listdir(d)):
        if not name.endswith(".sldc"):
            continue
        stem = os.path.join(directory, name[:-5])
        want_path = next((stem + x for x in (".out", ".utf16") if os.path.exists(stem + x)), None)
        if want_path is None:
            continue
        got = sldc_decompress(open(os.path.join(directory, name), "rb").read())
        want = open(want_path, "rb").read()
        if got != want:
            print(f"FAIL {name}: {len(got)} bytes, want {len(want)} ({got[:40]!r})")
            return 1
        print(f"ok {name} -> {len(got)} bytes")
        ok += 1
    # Invalid records are refused: no End of Record, no scheme, a reserved control symbol, a
    # record cut after Reset 1.
    for bad in (b"\xff\x80", b"\x00", b"\xff\xb8", b"\xff\xa8"):
        try:
            sldc_decompress(bad)
            print(f"FAIL invalid record {bad!r} accepted")
            return 1
        except SldcError:
            pass
    if ok == 0:
        print("FAIL no vector found")
        return 1
    print(f"{ok} passed, 0 failed")
    return 0


# ---- GSSAPI ----------------------------------------------------------------------------------

class Auth:
    """One connection's security context (acceptor)."""

    def __init__(self, scheme, token):
        import gssapi
        self.gssapi = gssapi
        self.scheme = scheme
        raw_ntlm = token.startswith(b"NTLMSSP\x00")
        # The keytab is KRB5_KTNAME (set from --keytab): a credential store given to
        # acquire_cred_from for every mechanism makes gss-ntlmssp's acceptor credential unusable.
        if scheme == "Kerberos":
            mech = gssapi.OID.from_int_seq(OID_KRB5)
            creds = gssapi.Credentials(usage="accept", mechs=[mech])
        elif raw_ntlm:
            mech = gssapi.OID.from_int_seq(OID_NTLM)
            creds = gssapi.Credentials(usage="accept", mechs=[mech])
        else:  # SPNEGO: Kerberos and NTLM underneath (whatever acquires)
            creds = gssapi.Credentials(usage="accept")
        self.ctx = gssapi.SecurityContext(creds=creds, usage="accept")
        self.raw_ntlm = raw_ntlm

    def step(self, token):
        return self.ctx.step(token)

    @property
    def complete(self):
        return self.ctx.complete

    def inner_mech(self):
        return self.ctx.mech.dotted_form

    def mechanism(self):
        inner = "NTLM" if self.inner_mech() == OID_NTLM else "Kerberos"
        if self.scheme == "Kerberos":
            return "Kerberos"
        return inner if self.raw_ntlm else "SPNEGO-" + inner

    def is_ntlm(self):
        return self.inner_mech() == OID_NTLM

    def unseal(self, header, data):
        if self.is_ntlm():
            res = self.ctx.unwrap(header + data)
            if not res.encrypted:
                raise ValueError("NTLM message not sealed")
            return res.message
        from gssapi.raw import IOV, IOVBufferType, unwrap_iov
        iov = IOV((IOVBufferType.header, False, header), data, std_layout=False)
        res = unwrap_iov(self.ctx, iov)
        if not res.encrypted:
            raise ValueError("Kerberos message not sealed")
        return iov[1].value

    def seal(self, plain):
        if self.is_ntlm():
            wrapped = self.ctx.wrap(plain, True).message
            return wrapped[:16], wrapped[16:]
        from gssapi.raw import IOV, IOVBufferType, wrap_iov
        iov = IOV(IOVBufferType.header, plain, IOVBufferType.padding, std_layout=False)
        wrap_iov(self.ctx, iov, confidential=True)
        return iov[0].value, iov[1].value + (iov[2].value or b"")


# ---- multipart/encrypted ----------------------------------------------------------------------

class Violation(Exception):
    pass


def parse_multipart(content_type, body):
    """-> (protocol, declared length, header, data, tab form)"""
    m = re.match(r'\s*multipart/encrypted\s*;(.*)$', content_type, re.I)
    if not m:
        raise Violation(f"Content-Type {content_type!r} is not multipart/encrypted")
    params = dict((k.strip().lower(), v.strip().strip('"'))
                  for k, _, v in (p.partition("=") for p in m.group(1).split(";")))
    protocol = params.get("protocol", "")
    boundary = params.get("boundary", "")
    if protocol not in (PROTO_KRB, PROTO_SPNEGO):
        raise Violation(f"multipart protocol {protocol!r}")
    b = ("--" + boundary).encode()
    if not body.startswith(b + b"\r\n"):
        raise Violation("body does not start with the boundary")
    rest = body[len(b) + 2:]
    tab = rest.startswith(b"\t")
    pre = b"\t" if tab else b""
    first = pre + b"Content-Type: " + protocol.encode() + b"\r\n"
    if not rest.startswith(first):
        raise Violation(f"first part Content-Type: {rest[:80]!r}")
    rest = rest[len(first):]
    m = re.match(rb"\t?OriginalContent: type=application/soap\+xml;charset=UTF-16;Length=(\d+)\r\n",
                 rest)
    if not m:
        raise Violation(f"OriginalContent line: {rest[:100]!r}")
    length = int(m.group(1))
    rest = rest[m.end():]
    second = b + b"\r\n" + pre + b"Content-Type: application/octet-stream\r\n"
    if not rest.startswith(second):
        raise Violation(f"second part: {rest[:80]!r}")
    rest = rest[len(second):]
    closing = b + b"--\r\n"
    if not rest.endswith(closing):
        raise Violation(f"body does not end with the closing boundary: {rest[-40:]!r}")
    rest = rest[:-len(closing)]
    if len(rest) < 4:
        raise Violation("no token length")
    (hlen,) = struct.unpack("<I", rest[:4])
    if hlen > len(rest) - 4:
        raise Violation(f"token header length {hlen} beyond the body")
    return protocol, length, rest[4:4 + hlen], rest[4 + hlen:], tab


def build_multipart(protocol, header, data, length, tab):
    pre = "\t" if tab else ""
    head = (f"--{BOUNDARY}\r\n{pre}Content-Type: {protocol}\r\n"
            f"{pre}OriginalContent: type=application/soap+xml;charset=UTF-16;Length={length}\r\n"
            f"--{BOUNDARY}\r\n{pre}Content-Type: application/octet-stream\r\n").encode()
    body = head + struct.pack("<I", len(header)) + header + data + f"--{BOUNDARY}--\r\n".encode()
    ctype = f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"'
    return ctype, body


def check_token_header(auth, header, data):
    """The sealed form Windows sends: a Kerberos CFX wrap token (RFC 4121) TOK_ID 05 04, Sealed,
    not SentByAcceptor, EC 0, RRC 28, header 60 bytes (ciphertext as long as the plaintext); an
    NTLM signature of 16 bytes, version 1."""
    if auth.is_ntlm():
        require(len(header) == 16, f"NTLM signature of {len(header)} bytes (want 16)")
        require(header[:4] == b"\x01\x00\x00\x00", f"NTLM signature version {header[:4].hex()}")
        return
    require(len(header) >= 16 and header[:2] == b"\x05\x04",
            f"Kerberos wrap token id {header[:2].hex()} (want 0504, RFC 4121 CFX)")
    flags = header[2]
    require(flags & 0x02, "Kerberos wrap token not Sealed")
    require(not flags & 0x01, "Kerberos wrap token from the client flagged SentByAcceptor")
    require(header[3] == 0xFF, f"Kerberos wrap token filler {header[3]:#x}")
    ec, rrc = struct.unpack(">HH", header[4:8])
    require(ec == 0, f"Kerberos wrap token EC {ec} (Windows: 0)")
    require(rrc == 28, f"Kerberos wrap token RRC {rrc} (Windows: 28)")
    require(len(header) == 60, f"Kerberos token header of {len(header)} bytes (Windows: 60)")


# ---- SOAP --------------------------------------------------------------------------------------

def q(tag):
    prefix, _, local = tag.partition(":")
    return "{%s}%s" % (NS[prefix], local)


def text_of(root, path):
    el = root.find(path, NS)
    return None if el is None else (el.text or "").strip()


def envelope(header_xml, body_xml):
    return ('<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" xmlns:n="%s" xmlns:w="%s" '
            'xmlns:p="%s"><s:Header>%s</s:Header><s:Body>%s</s:Body></s:Envelope>'
            % (NS["s"], NS["a"], NS["n"], NS["w"], NS["p"], header_xml, body_xml))


def new_id():
    return "uuid:" + str(uuid.uuid4()).upper()


def reply_headers(action, relates_to):
    return ("<a:Action>%s</a:Action><a:MessageID>%s</a:MessageID><a:To>%s</a:To>"
            "<a:RelatesTo>%s</a:RelatesTo>" % (action, new_id(), ANONYMOUS, relates_to))


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.events_seen = 0
        self.dumped = 0
        self.identifier = args.identifier or str(uuid.uuid4()).upper()
        self.version = "uuid:" + str(uuid.uuid4()).upper()
        self.path = args.notify_path or f"/wsman/subscriptions/{self.identifier}/1"
        self.bookmarks = {}  # (client, machine) -> the BookmarkList of its last accepted Events
        self.positions = {}  # (client, machine) -> {channel: RecordId} of accepted bookmarks
        self.port = 0
        self.record_file = open(args.record, "a", encoding="utf-8") if args.record else None

    def record(self, entry):
        with self.lock:
            if self.record_file:
                self.record_file.write(json.dumps(entry) + "\n")
                self.record_file.flush()

    def notify_to(self):
        return f"http://{self.args.host}:{self.port}{self.path}"

    def subscription(self, client, machine):
        a = self.args
        with self.lock:
            bookmark = self.bookmarks.get((client, machine))
        bookmark = f"<w:Bookmark>{bookmark}</w:Bookmark>" if bookmark else ""
        max_elements = (f"<w:MaxElements>{a.max_elements}</w:MaxElements>"
                        if a.max_elements else "")
        addr = self.notify_to()
        return (
            '<m:Subscription xmlns:m="http://schemas.microsoft.com/wbem/wsman/1/subscription">'
            f"<m:Version>{self.version}</m:Version>"
            '<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:e="%s" xmlns:n="%s" xmlns:w="%s" '
            'xmlns:p="%s">' % (NS["s"], NS["a"], NS["e"], NS["n"], NS["w"], NS["p"]) +
            "<s:Header>"
            f"<a:To>{ANONYMOUS}</a:To>"
            '<w:ResourceURI s:mustUnderstand="true">'
            "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog</w:ResourceURI>"
            f'<a:ReplyTo><a:Address s:mustUnderstand="true">{ANONYMOUS}</a:Address></a:ReplyTo>'
            '<a:Action s:mustUnderstand="true">'
            "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe</a:Action>"
            f'<w:MaxEnvelopeSize s:mustUnderstand="true">{a.max_envelope_size}</w:MaxEnvelopeSize>'
            f"<a:MessageID>{new_id()}</a:MessageID>"
            '<w:Locale xml:lang="en-US" s:mustUnderstand="false"/>'
            '<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>'
            '<w:OptionSet xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<w:Option Name="SubscriptionName">{a.subscription}</w:Option>'
            '<w:Option Name="Compression">SLDC</w:Option>'
            '<w:Option Name="CDATA" xsi:nil="true"/>'
            '<w:Option Name="ContentFormat">Raw</w:Option>'
            '<w:Option Name="IgnoreChannelError" xsi:nil="true"/>'
            "</w:OptionSet></s:Header><s:Body><e:Subscribe>"
            f"<e:EndTo><a:Address>{addr}</a:Address><a:ReferenceProperties>"
            f"<e:Identifier>{self.identifier}</e:Identifier></a:ReferenceProperties></e:EndTo>"
            '<e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Events">'
            f"<w:Heartbeats>PT{a.heartbeat}.000S</w:Heartbeats>"
            f"<e:NotifyTo><a:Address>{addr}</a:Address><a:ReferenceProperties>"
            f"<e:Identifier>{self.identifier}</e:Identifier></a:ReferenceProperties>"
            '<c:Policy xmlns:c="http://schemas.xmlsoap.org/ws/2002/12/policy" '
            'xmlns:auth="http://schemas.microsoft.com/wbem/wsman/1/authentication">'
            "<c:ExactlyOne><c:All><auth:Authentication Profile=\"http://schemas.dmtf.org/wbem/"
            'wsman/1/wsman/secprofile/http/spnego-kerberos"></auth:Authentication></c:All>'
            "</c:ExactlyOne></c:Policy></e:NotifyTo>"
            f'<w:ConnectionRetry Total="5">PT{a.connection_retry}.0S</w:ConnectionRetry>'
            f"<w:MaxTime>PT{a.max_time}.000S</w:MaxTime>{max_elements}"
            f'<w:MaxEnvelopeSize Policy="Notify">{a.max_envelope_size}</w:MaxEnvelopeSize>'
            '<w:Locale xml:lang="en-US" s:mustUnderstand="false"/>'
            '<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>'
            "<w:ContentEncoding>UTF-16</w:ContentEncoding></e:Delivery>"
            '<w:Filter Dialect="http://schemas.microsoft.com/win/2004/08/events/eventquery">'
            '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
            f"</w:Filter>{bookmark}<w:SendBookmarks/></e:Subscribe></s:Body></s:Envelope></m:Subscription>")


def require(cond, message):
    if not cond:
        raise Violation(message)


def check_common(root, entry):
    action = text_of(root, "s:Header/a:Action")
    entry["action"] = action
    mid = text_of(root, "s:Header/a:MessageID")
    require(mid is not None and re.fullmatch(r"uuid:[0-9A-Fa-f-]{36}", mid),
            f"a:MessageID {mid!r} is not uuid:<GUID>")
    entry["message_id"] = mid
    return action, mid


def check_windows_headers(root, what):
    """The headers every Enumerate/Heartbeat/Events of a Windows source carries."""
    for tag in ("w:MaxEnvelopeSize", "w:Locale", "p:DataLocale", "p:SessionId",
                "p:OperationID", "p:SequenceId", "w:OperationTimeout"):
        require(root.find("s:Header/" + tag, NS) is not None, f"{what} without {tag}")
    size = text_of(root, "s:Header/w:MaxEnvelopeSize")
    require(size.isdigit(), f"{what}: w:MaxEnvelopeSize {size!r}")
    require(re.fullmatch(r"PT\d+(\.\d+)?S", text_of(root, "s:Header/w:OperationTimeout") or ""),
            f"{what}: w:OperationTimeout is not a PTnS duration")


def check_source_headers(state, root, entry, path):
    check_windows_headers(root, entry["action"].rsplit("/", 1)[-1])
    machine = text_of(root, "s:Header/m:MachineID")
    entry["machine"] = machine
    require(machine, "no m:MachineID")
    require(path == state.path, f"POST to {path}, not the NotifyTo path {state.path}")
    to = text_of(root, "s:Header/a:To")
    require(to is not None and to.lower().endswith(state.path.lower()),
            f"a:To {to!r} is not the NotifyTo address")
    ident = text_of(root, "s:Header/e:Identifier")
    require(ident == state.identifier, f"e:Identifier {ident!r} (want {state.identifier})")
    require(root.find("s:Header/w:AckRequested", NS) is not None, "no w:AckRequested")
    require(text_of(root, "s:Header/a:ReplyTo/a:Address") == ANONYMOUS, "a:ReplyTo not anonymous")


def check_event(xml_text, entry):
    try:
        ev = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise Violation(f"event {len(entry['record_ids'])} is not well-formed XML: {e}")
    require(ev.tag == q("ev:Event"), f"event root {ev.tag} is not Event")
    system = ev.find("ev:System", NS)
    require(system is not None, "event without System")
    computer = text_of(system, "ev:Computer")
    rid = text_of(system, "ev:EventRecordID")
    channel = text_of(system, "ev:Channel")
    require(computer, "event without System/Computer")
    require(rid is not None and rid.isdigit(), f"System/EventRecordID {rid!r}")
    entry["record_ids"].append(int(rid))
    entry["computers"].append(computer)
    entry["channels"].append(channel)


def check_events(state, root, entry, path):
    check_source_headers(state, root, entry, path)
    bookmark = root.find("s:Header/w:Bookmark", NS)
    require(bookmark is not None, "Events without w:Bookmark")
    blist = bookmark.find("BookmarkList")
    require(blist is not None, "w:Bookmark without BookmarkList")
    marks = {}
    current = []
    for b in blist.findall("Bookmark"):
        ch, rid = b.get("Channel"), b.get("RecordId")
        require(ch and rid and rid.isdigit(), f"Bookmark {b.attrib}")
        marks[ch] = int(rid)
        if b.get("IsCurrent") == "true":
            current.append(ch)
    require(len(current) == 1, f"{len(current)} bookmarks IsCurrent (want 1)")
    entry["bookmark"] = ET.tostring(blist, encoding="unicode")
    entry["record_ids"], entry["computers"], entry["channels"] = [], [], []
    events = root.findall("s:Body/w:Events/w:Event", NS)
    require(events, "Events message without w:Event")
    for ev in events:
        require(ev.get("Action") == ACTION_EVENT, f"w:Event Action {ev.get('Action')!r}")
        check_event((ev.text or "").strip(), entry)
    entry["events"] = len(events)
    if state.args.max_elements:
        require(len(events) <= state.args.max_elements,
                f"{len(events)} events in one message (subscription MaxElements "
                f"{state.args.max_elements})")
    # The bookmark is where the source is now: the last event of each channel in the message.
    last = {}
    for ch, rid in zip(entry["channels"], entry["record_ids"]):
        last[ch] = rid
    for ch, rid in last.items():
        require(marks.get(ch) == rid,
                f"bookmark of channel {ch!r} is {marks.get(ch)}, last event sent {rid}")
    require(current[0] == entry["channels"][-1],
            f"IsCurrent bookmark {current[0]!r}, last event's channel {entry['channels'][-1]!r}")


# ---- HTTP ---------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wef-collector.py"
    auth = None
    client = None

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("%s\n" % (fmt % args))

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def refuse_auth(self, entry, reason):
        entry["status"] = 401
        entry["violations"].append(reason)
        self.server.state.record(entry)
        self.auth = None
        self.send(401, headers=[("WWW-Authenticate", "Kerberos"),
                                ("WWW-Authenticate", "Negotiate")])

    def do_GET(self):
        self.send(405)

    def do_POST(self):
        state = self.server.state
        entry = {"path": self.path, "violations": []}
        if self.headers.get("Transfer-Encoding"):
            entry["violations"].append("Transfer-Encoding (Windows sends Content-Length)")
            entry["status"] = 400
            state.record(entry)
            self.close_connection = True
            self.send(400)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        authz = self.headers.get("Authorization")
        if authz:
            scheme, _, b64 = authz.partition(" ")
            entry["kind"] = "auth"
            entry["scheme"] = scheme
            if scheme not in ("Kerberos", "Negotiate"):
                return self.refuse_auth(entry, f"scheme {scheme!r}")
            try:
                token = base64.b64decode(b64.strip(), validate=True)
                if self.auth is None or self.auth.complete or self.auth.scheme != scheme:
                    self.auth = Auth(scheme, token)
                out = self.auth.step(token)
                complete = self.auth.complete  # python-gssapi raises a failed step's error here
            except Exception as e:  # noqa: BLE001 - any GSS failure is a 401
                return self.refuse_auth(entry, f"GSS: {e}")
            hdr = [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")] if out else []
            if not complete:
                entry["status"] = 401
                entry["leg"] = "challenge"
                state.record(entry)
                return self.send(401, headers=hdr)
            # gss-ntlmssp counts the terminating NUL in the name's length.
            self.client = str(self.auth.ctx.initiator_name).rstrip("\x00")
            entry.update(status=200, mechanism=self.auth.mechanism(), client=self.client)
            state.record(entry)
            if body:
                entry = {"path": self.path, "violations": [
                    "a body on the authentication request (Windows sends an empty POST)"]}
                state.record(entry)
            return self.send(200, headers=hdr)
        if self.auth is None or not self.auth.complete:
            return self.refuse_auth(entry, "request without an authenticated context")
        entry.update(kind="soap", mechanism=self.auth.mechanism(), client=self.client)
        try:
            status, reply = self.handle_soap(entry, body)
        except Violation as v:
            entry["violations"].append(str(v))
            status, reply = 400, None
        entry["status"] = status
        state.record(entry)
        if reply is None:
            return self.send(status, headers=[("Retry-After", "1")] if status == 503 else [])
        plain = b"\xff\xfe" + reply.encode("utf-16-le")
        header, data = self.auth.seal(plain)
        ctype, out = build_multipart(entry["protocol"], header, data, len(plain), entry["tab"])
        self.send(status, out, [("Content-Type", ctype)])

    def handle_soap(self, entry, body):
        state = self.server.state
        protocol, length, header, data, tab = parse_multipart(
            self.headers.get("Content-Type", ""), body)
        entry["protocol"], entry["tab"] = protocol, tab
        want = PROTO_KRB if self.auth.scheme == "Kerberos" else PROTO_SPNEGO
        require(protocol == want, f"protocol {protocol} on a {self.auth.scheme} connection")
        check_token_header(self.auth, header, data)
        try:
            plain = self.auth.unseal(header, data)
        except Exception as e:  # noqa: BLE001
            raise Violation(f"cannot unseal: {e}")
        require(len(plain) == length,
                f"OriginalContent Length={length}, unsealed {len(plain)} bytes")
        encoding = self.headers.get("Content-Encoding")
        entry["compressed"] = False
        if encoding is not None:
            require(encoding == "SLDC", f"Content-Encoding {encoding!r}")
            if not plain.startswith(b"\xff\xfe<\x00"):
                entry["sldc_bytes"] = len(plain)
                try:
                    plain = sldc_decompress(plain)
                except SldcError as e:
                    raise Violation(f"SLDC: {e}")
                entry["compressed"] = True
        require(plain.startswith(b"\xff\xfe"), "SOAP body without a UTF-16LE BOM")
        entry["soap_bytes"] = len(plain)
        if self.path == state.path:  # MaxEnvelopeSize Policy="Notify" of the subscription
            require(len(plain) <= state.args.max_envelope_size,
                    f"SOAP envelope of {len(plain)} bytes (subscription MaxEnvelopeSize "
                    f"{state.args.max_envelope_size})")
        try:
            soap = plain[2:].decode("utf-16-le")
        except UnicodeDecodeError as e:
            raise Violation(f"UTF-16: {e}")
        if state.args.dump:
            with state.lock:
                state.dumped += 1
                n = state.dumped
            with open(os.path.join(state.args.dump, f"{n:05d}.xml"), "w", encoding="utf-8") as f:
                f.write(soap)
        try:
            root = ET.fromstring(soap)
        except ET.ParseError as e:
            raise Violation(f"SOAP is not well-formed XML: {e}")
        require(root.tag == q("s:Envelope"), f"root {root.tag}")
        action, mid = check_common(root, entry)
        if action == ACTION_ENUMERATE:
            require(self.path == state.args.manager_path,
                    f"Enumerate to {self.path} (want {state.args.manager_path})")
            require(text_of(root, "s:Header/w:ResourceURI") == RESOURCE_SUBSCRIPTION,
                    f"w:ResourceURI {text_of(root, 's:Header/w:ResourceURI')!r}")
            entry["machine"] = text_of(root, "s:Header/m:MachineID")
            require(entry["machine"], "Enumerate without m:MachineID")
            check_windows_headers(root, "Enumerate")
            require(text_of(root, "s:Header/a:ReplyTo/a:Address") == ANONYMOUS,
                    "a:ReplyTo not anonymous")
            require(root.find("s:Body/n:Enumerate", NS) is not None, "no n:Enumerate body")
            body_xml = ("<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext>"
                        "<w:Items>%s</w:Items><w:EndOfSequence/></n:EnumerateResponse>"
                        % state.subscription(self.client, entry["machine"]))
            return 200, envelope(reply_headers(ACTION_ENUMERATE + "Response", mid), body_xml)
        if action == ACTION_END:
            require(text_of(root, "s:Header/w:ResourceURI") ==
                    "http://schemas.microsoft.com/wbem/wsman/1/wsman/FullDuplex",
                    "End without the FullDuplex ResourceURI")
            return 204, None
        if action == ACTION_HEARTBEAT:
            check_source_headers(state, root, entry, self.path)
            evs = root.find("s:Body/w:Events", NS)
            require(evs is not None and len(evs) == 0, "Heartbeat body is not an empty w:Events")
            return 200, envelope(reply_headers(ACTION_EVENTS.replace("Events", "Ack"), mid), "")
        if action == ACTION_SUB_END:
            require(root.find("s:Body/e:SubscriptionEnd", NS) is not None,
                    "no e:SubscriptionEnd body")
            return 200, None
        if action == ACTION_EVENTS:
            check_events(state, root, entry, self.path)
            with state.lock:
                state.events_seen += 1
                refuse = state.events_seen <= state.args.fail_first_events
            if refuse:
                entry["refused"] = True
                return 503, None
            key = (self.client, entry["machine"])
            marks = {b.get("Channel"): int(b.get("RecordId"))
                     for b in ET.fromstring(entry["bookmark"]).findall("Bookmark")}
            with state.lock:  # stored once accepted, offered back at the next Enumerate
                before = state.positions.get(key, {})
                back = [ch for ch, rid in before.items() if marks.get(ch, rid) < rid]
                if not back:
                    state.bookmarks[key] = entry["bookmark"]
                    state.positions[key] = {**before, **marks}
            require(not back, f"bookmark moved backwards for {back} (was {before})")
            return 200, envelope(reply_headers(ACTION_EVENTS.replace("Events", "Ack"), mid), "")
        raise Violation(f"unknown action {action!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", help="JSON Lines file: one line per message")
    ap.add_argument("--keytab", default=os.environ.get("KRB5_KTNAME", "").replace("FILE:", ""))
    ap.add_argument("--host", default="127.0.0.1", help="host name in NotifyTo")
    ap.add_argument("--manager-path", default="/wsman/SubscriptionManager/WEC")
    ap.add_argument("--subscription", default="security")
    ap.add_argument("--identifier", help="e:Identifier of the subscription (default: a new GUID)")
    ap.add_argument("--notify-path", help="path of NotifyTo (default: /wsman/subscriptions/ID/1)")
    ap.add_argument("--heartbeat", type=int, default=60, help="w:Heartbeats seconds")
    ap.add_argument("--max-time", type=int, default=5, help="w:MaxTime seconds")
    ap.add_argument("--connection-retry", type=int, default=60,
                    help="w:ConnectionRetry interval in seconds (Total 5)")
    ap.add_argument("--max-elements", type=int, default=0, help="w:MaxElements (0: none)")
    ap.add_argument("--max-envelope-size", type=int, default=512000)
    ap.add_argument("--fail-first-events", type=int, default=0,
                    help="answer 503 to the first N Events messages")
    ap.add_argument("--self-test-sldc", metavar="DIR", nargs="+",
                    help="decode DIR/X.sldc, compare with X.out or X.utf16, exit")
    ap.add_argument("--dump", metavar="DIR", help="write each decoded SOAP message to DIR/N.xml")
    ap.add_argument("--port", type=int, default=0,
                    help="TCP port on 127.0.0.1 (default: an ephemeral one)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.self_test_sldc:
        return self_test_sldc(args.self_test_sldc)
    if args.keytab:
        os.environ["KRB5_KTNAME"] = "FILE:" + os.path.abspath(args.keytab)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    server.state.port = server.server_address[1]
    print(f"LISTENING {server.state.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
