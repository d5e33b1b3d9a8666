"""A real SMTP server for the notification tests (aiosmtpd), on 127.0.0.1.

Usage: server.py PORT OUTDIR CERT KEY USER PASSWORD

STARTTLS is required before AUTH (PLAIN/LOGIN) and before mail is accepted.
Each message received is parsed with Python's `email` package and
summarised as OUTDIR/<n>.json (headers, each part's type, file name and
decoded size, the text part) next to the raw OUTDIR/<n>.eml. Prints "ready"
once it listens.
"""
import email
import email.policy
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outdir, cert, key, user, password = sys.argv[1:7]


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        n = Handler.count
        raw = envelope.original_content or envelope.content
        with open(os.path.join(outdir, f"{n}.eml"), "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        text = None
        for part in msg.walk():
            if part.is_multipart():
                parts.append({"content_type": part.get_content_type()})
                continue
            payload = part.get_payload(decode=True) or b""
            parts.append({
                "content_type": part.get_content_type(),
                "filename": part.get_filename(),
                "size": len(payload),
                "head": payload[:4].hex(),
            })
            if part.get_content_type() == "text/plain" and text is None:
                text = part.get_content()
        summary = {
            "message_id": msg["Message-ID"],
            "subject": str(msg["Subject"]),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "rcpt": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": session.authenticated,
            "parts": parts,
            "text": text,
        }
        tmp = os.path.join(outdir, f"{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f)
        os.rename(tmp, os.path.join(outdir, f"{n}.json"))
        return "250 2.0.0 queued as test-%d" % n


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode() == user
          and auth_data.password.decode() == password)
    # handled=False: aiosmtpd answers 535 itself on failure.
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=ctx,
    require_starttls=True,
    auth_require_tls=True,
    authenticator=authenticator,
)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
