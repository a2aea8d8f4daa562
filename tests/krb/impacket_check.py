#!/usr/bin/python3
"""Independent offline decryptor for the wec::krb tests, on python3-impacket (pure-Python keytab
parsing, Kerberos ASN.1 and RFC 3961 crypto; no MIT code).

usage: impacket_check.py KEYTAB TOKENS.json OUT.json
TOKENS.json is what make_tokens.py wrote (raw krb5 mech, mutual authentication). OUT.json gets the
session key, the acceptor subkey and the plaintext of every sealed wrap token (null for others).
"""
import json
import struct
import sys

from impacket.krb5.asn1 import AP_REP, AP_REQ, Authenticator, EncAPRepPart, EncTicketPart
from impacket.krb5.crypto import Key, _enctype_table
from impacket.krb5.keytab import Keytab
from pyasn1.codec.der import decoder


def strip_gss(token, tok_id):
    """0x60 len OID TOK_ID message -> message."""
    assert token[0] == 0x60
    pos = 1
    if token[pos] & 0x80:
        pos += 1 + (token[pos] & 0x7F)
    else:
        pos += 1
    assert token[pos] == 0x06
    pos += 2 + token[pos + 1]
    assert token[pos:pos + 2] == tok_id, token[pos:pos + 2]
    return token[pos + 2:]


def unwrap_cfx(key, token, acceptor):
    header = token[:16]
    tok_id, flags, filler, ec, rrc, seq = struct.unpack(">2sBBHHQ", header)
    assert tok_id == b"\x05\x04" and filler == 0xFF
    if not flags & 0x02:
        return None
    body = token[16:]
    r = rrc % len(body)
    body = body[r:] + body[:r]  # undo the right rotation (RFC 4121 4.2.5)
    usage = 22 if acceptor else 24
    plain = _enctype_table[key.enctype].decrypt(key, usage, body)
    copy = plain[-16:]
    assert copy[:6] == header[:6] and copy[6:8] == b"\0\0" and copy[8:] == header[8:]
    return plain[:len(plain) - 16 - ec]


def main():
    keytab_path, tokens_path, out_path = sys.argv[1:4]
    tokens = json.load(open(tokens_path))
    keytab = Keytab.loadFile(keytab_path)

    ap_req = decoder.decode(strip_gss(bytes.fromhex(tokens["ap_req"]), b"\x01\x00"),
                            asn1Spec=AP_REQ())[0]
    etype = int(ap_req["ticket"]["enc-part"]["etype"])
    cipher = bytes(ap_req["ticket"]["enc-part"]["cipher"])
    ticket = None
    for entry in keytab.entries:
        kb = entry.main_part["keyblock"]
        if int(kb["keytype"]) != etype:
            continue
        try:
            plain = _enctype_table[etype].decrypt(Key(etype, bytes(kb["keyvalue"]["data"])), 2,
                                                  cipher)
        except Exception:
            continue
        ticket = decoder.decode(plain, asn1Spec=EncTicketPart())[0]
        break
    if ticket is None:
        raise SystemExit("impacket: no keytab key decrypts the ticket")
    skey = Key(int(ticket["key"]["keytype"]), bytes(ticket["key"]["keyvalue"]))

    auth_plain = _enctype_table[skey.enctype].decrypt(
        skey, 11, bytes(ap_req["authenticator"]["cipher"]))
    decoder.decode(auth_plain, asn1Spec=Authenticator())

    ap_rep = decoder.decode(strip_gss(bytes.fromhex(tokens["ap_rep"]), b"\x02\x00"),
                            asn1Spec=AP_REP())[0]
    rep_plain = _enctype_table[skey.enctype].decrypt(skey, 12, bytes(ap_rep["enc-part"]["cipher"]))
    rep = decoder.decode(rep_plain, asn1Spec=EncAPRepPart())[0]
    subkey = Key(int(rep["subkey"]["keytype"]), bytes(rep["subkey"]["keyvalue"]))

    plaintexts = []
    for m in tokens["messages"]:
        token = bytes.fromhex(m["header"]) + bytes.fromhex(m["data"])
        plain = unwrap_cfx(subkey, token, m["direction"] == "acceptor")
        plaintexts.append(plain.hex() if plain is not None else None)
    json.dump({
        "session_key": skey.contents.hex(),
        "acceptor_subkey": subkey.contents.hex(),
        "plaintexts": plaintexts,
    }, open(out_path, "w"))


if __name__ == "__main__":
    main()
