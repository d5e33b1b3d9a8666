#!/usr/bin/env python3
"""Writes the hand-made seed inputs into fuzz/seeds/<target>/ (committed).

The RFC 4475 torture messages (tests/data/rfc4475/*.dat) are the other half of
the seeds; fuzz/run_fuzz.sh copies both into the working corpus. Re-run this
after editing the samples: `python3 fuzz/make_seeds.py`.
"""
import os
import re
import glob

HERE = os.path.dirname(os.path.abspath(__file__))
TORTURE = os.path.join(HERE, "..", "tests", "data", "rfc4475")


def crlf(text: str) -> bytes:
    """Sample text (LF, indented) -> wire bytes with CRLF line ends."""
    lines = text.strip("\n").split("\n")
    return ("\r\n".join(l.strip() if l.strip() else "" for l in lines) + "\r\n\r\n").encode()


REGISTER = """
REGISTER sip:192.168.1.10 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1;rport
Max-Forwards: 70
Contact: <sip:u0001@192.168.1.20:5060;transport=udp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";expires=3600
To: <sip:u0001@192.168.1.10>
From: <sip:u0001@192.168.1.10>;tag=37GkEhwl6
Call-ID: 6a2f8e3b-reg@192.168.1.20
CSeq: 1 REGISTER
Expires: 3600
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE
User-Agent: Grandstream GXP1625 1.0.4.140
Supported: replaces, path, timer, eventlist
Content-Length: 0
"""

REGISTER_AUTH = """
REGISTER sip:homeline.local SIP/2.0
v: SIP/2.0/TCP [2001:db8::20]:5060;branch=z9hG4bK776asdhds;alias
Max-Forwards: 70
m: "Kitchen" <sip:kitchen@[2001:db8::20]:5060;ob>;reg-id=1;q=0.5
t: "Kitchen" <sip:kitchen@homeline.local>
f: "Kitchen" <sip:kitchen@homeline.local>;tag=a73kszlfl
i: 1j9FpLxk3uxtm8tn@2001:db8::20
CSeq: 2 REGISTER
Authorization: Digest username="kitchen", realm="homeline", nonce="00000000691f1a2b6b8b45676b8b45679d8c7e6a5b4c3d2e1f0a9b8c7d6e5f40", uri="sip:homeline.local", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001
Expires: 600
l: 0
"""

UNREGISTER = """
REGISTER sips:homeline.local:5061 SIP/2.0
Via: SIP/2.0/TLS 10.0.0.7:40001;branch=z9hG4bKunreg1;received=10.0.0.7;rport=40001
Max-Forwards: 70
To: <sips:hall@homeline.local>
From: <sips:hall@homeline.local>;tag=1928301774
Call-ID: a84b4c76e66710@10.0.0.7
CSeq: 3 REGISTER
Contact: *
Expires: 0
Authorization: Digest username="hall", realm="homeline", nonce="abc", uri="sips:homeline.local:5061", response="8c0d0e2e5e0e6b7b2b1c4b0d1e3f5a6c0d0e2e5e0e6b7b2b1c4b0d1e3f5a6c", algorithm=SHA-256, qop=auth, nc=0000000a, cnonce="x"
Content-Length: 0
"""

OPTIONS = """
OPTIONS sip:homeline.local SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK.opt1
Max-Forwards: 70
To: <sip:homeline.local>
From: "Probe" <sip:probe@127.0.0.1:5091>;tag=opt-1
Call-ID: options-1@127.0.0.1
CSeq: 100 OPTIONS
Accept: application/sdp
Require: foo
Content-Length: 0
"""

SDP = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.168.1.21\r\ns=-\r\n"
    "c=IN IP4 192.168.1.21\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)

INVITE_HEAD = """
INVITE sip:+15551234567@homeline.local;user=phone SIP/2.0
Via: SIP/2.0/UDP 192.168.1.21:5060;branch=z9hG4bKinv1;rport
Via: SIP/2.0/UDP 192.168.1.1:5060;branch=z9hG4bKproxy, SIP/2.0/TCP gw.example.net;branch=z9hG4bKgw
Route: <sip:homeline.local;lr>
Max-Forwards: 69
To: <tel:+15551234567>
From: "Alice \\"A\\"" <sip:alice@homeline.local>;tag=9fxced76sl
Call-ID: 3848276298220188511@192.168.1.21
CSeq: 314159 INVITE
Contact: <sip:alice@192.168.1.21:5060>
Proxy-Authorization: Digest username="alice",realm="homeline",nonce="n",uri="sip:+15551234567@homeline.local",response="r",qop=auth,nc=00000001,cnonce="c1"
Subject: lunch?
Content-Type: application/sdp
"""


def invite() -> bytes:
    head = crlf(INVITE_HEAD)[:-2]  # keep one CRLF, add Content-Length
    return head + f"Content-Length: {len(SDP)}\r\n\r\n".encode() + SDP.encode()


RESP_401 = """
SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1;rport=5060;received=192.168.1.20
To: <sip:u0001@192.168.1.10>;tag=5f3a9c
From: <sip:u0001@192.168.1.10>;tag=37GkEhwl6
Call-ID: 6a2f8e3b-reg@192.168.1.20
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="homeline", nonce="00000000691f1a2b", algorithm=MD5, qop="auth"
WWW-Authenticate: Digest realm="homeline", nonce="00000000691f1a2b", algorithm=SHA-256, qop="auth"
Server: Homeline/0.1.0
Content-Length: 0
"""

RESP_200 = """
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-524287-1;rport=5060;received=192.168.1.20
To: <sip:u0001@192.168.1.10>;tag=5f3a9c
From: <sip:u0001@192.168.1.10>;tag=37GkEhwl6
Call-ID: 6a2f8e3b-reg@192.168.1.20
CSeq: 2 REGISTER
Contact: <sip:u0001@192.168.1.20:5060;transport=udp>;expires=3600, <sip:u0001@10.0.0.5>;expires=60
Content-Length: 0
"""

RESP_180 = """
SIP/2.0 180
Via: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKx
To: sip:bob@example.com;tag=b
From: sip:alice@example.com;tag=a
Call-ID: c
CSeq: 1 INVITE
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr;transport=tcp>
Content-Length: 0
"""

FOLDED = (
    b"MESSAGE sip:bob@homeline.local SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5092\r\n"
    b"\t;branch=z9hG4bKfold\r\n"
    b"Max-Forwards: 0070\r\n"
    b"To: bob\r\n <sip:bob@homeline.local>\r\n"
    b"From: <sip:alice@homeline.local>;tag=f\r\n"
    b"Call-ID: fold\r\n"
    b"CSeq: 00001 MESSAGE\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"hello without Content-Length"
)

DATAGRAM = {
    "register.sip": crlf(REGISTER),
    "register_auth_compact_v6.sip": crlf(REGISTER_AUTH),
    "unregister_star_sha256.sip": crlf(UNREGISTER),
    "options_require.sip": crlf(OPTIONS),
    "invite_sdp.sip": invite(),
    "resp_401.sip": crlf(RESP_401),
    "resp_200.sip": crlf(RESP_200),
    "resp_180_noreason.sip": crlf(RESP_180),
    "message_folded_no_cl.sip": FOLDED,
}

# parse_stream inputs: first byte selects the chunking, the rest is the stream.
STREAM = {
    "two_messages.bin": b"\x00" + crlf(REGISTER) + crlf(OPTIONS),
    "keepalives.bin": b"\x03" + b"\r\n\r\n" + crlf(OPTIONS) + b"\r\n" + invite() + b"\r\n\r\n",
    "pipelined_invite.bin": b"\x07" + invite() + crlf(RESP_200) + crlf(RESP_401),
    "partial_body.bin": b"\x01" + crlf(OPTIONS).replace(b"Content-Length: 0", b"Content-Length: 10") + b"abc",
    "bad_then_good.bin": b"\x02" + b"GARBAGE\r\n\r\n" + crlf(OPTIONS),
}

DIGEST = {
    "md5_qop.txt": 'Digest username="u0001", realm="homeline", nonce="n", uri="sip:127.0.0.1:5060", response="r", algorithm=MD5, cnonce="6b8b4567", qop=auth, nc=00000001',
    "sha256_qop.txt": 'Digest username="kitchen",realm="homeline",nonce="n",uri="sip:homeline.local",response="r",algorithm=SHA-256,qop=auth,nc=0000000a,cnonce="0a4f113b"',
    "no_qop.txt": 'Digest username="hall", realm="homeline", nonce="n", uri="sip:homeline.local", response="r"',
    "quoted_escapes.txt": 'digest  username="a\\"b, c", realm="homeline", nonce="n", uri="sip:x@y;a=\\"1\\"", response="r", opaque="", algorithm=md5',
    "bad_nonce.txt": 'Digest username="u0001", realm="homeline", nonce="0011", uri="sip:h", response="00", qop=auth, nc=zz, cnonce=c',
    "basic.txt": "Basic dXNlcjpwYXNz",
}


def torture_header_values():
    """Authorization-like values found in the torture messages."""
    out = {}
    for path in sorted(glob.glob(os.path.join(TORTURE, "*.dat"))):
        data = open(path, "rb").read()
        for m in re.finditer(rb"(?im)^(?:proxy-)?authorization\s*:\s*(.*(?:\r\n[ \t].*)*)", data):
            name = os.path.basename(path)[:-4] + f"_{m.start()}.txt"
            out[name] = m.group(1).replace(b"\r\n", b" ")
    return out


def write(target: str, files: dict):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


if __name__ == "__main__":
    write("parse_datagram", DATAGRAM)
    write("parse_stream", STREAM)
    digest = dict(DIGEST)
    digest.update(torture_header_values())
    write("digest_credentials", digest)
    for t in ("parse_datagram", "parse_stream", "digest_credentials"):
        print(t, len(os.listdir(os.path.join(HERE, "seeds", t))), "seed files")
