#!/usr/bin/env python3
"""Cross-checks for the Twilio tests, with Twilio's own Python library (twilio==9.13.0).

  python3 twilio_check.py sign  < [{"token","url","params":[[k,v],...]}, ...]   -> ["sig", ...]
  python3 twilio_check.py twiml < ["<?xml ...><Response>...</Response>", ...]    -> {"errors": [...]}

`sign` uses twilio.request_validator.RequestValidator.compute_signature.
`twiml` parses each document (well-formed XML, one <Response> root), checks
every element is a TwiML verb/noun the library knows and every attribute a
documented keyword of the library's builder for it, rebuilds the document
with twilio.twiml and compares both in canonical XML (C14N 2.0).
Exit status 0 iff no errors.
"""
import inspect
import json
import re
import sys
import xml.etree.ElementTree as ET

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse


class MultiParams(dict):
    def getlist(self, name):
        return self[name]


def sign(items):
    out = []
    for it in items:
        params = MultiParams()
        for k, v in it["params"]:
            params.setdefault(k, []).append(v)
        out.append(RequestValidator(it["token"]).compute_signature(it["url"], params))
    return out


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# element tag -> (method name on the parent builder, name of its positional text argument)
VERBS = {
    "Say": ("say", "message"),
    "Play": ("play", "url"),
    "Record": ("record", None),
    "Dial": ("dial", "number"),
    "Reject": ("reject", None),
    "Hangup": ("hangup", None),
    "Message": ("message", "body"),
}
NOUNS = {"Sip": ("sip", "sip_url"), "Number": ("number", "phone_number")}


def build(parent, el, table, errors, where):
    if el.tag not in table:
        errors.append(f"{where}: <{el.tag}> is not a TwiML element allowed here")
        return
    method_name, text_arg = table[el.tag]
    method = getattr(parent, method_name, None)
    if method is None:
        errors.append(f"{where}: {type(parent).__name__} has no {method_name}()")
        return
    params = inspect.signature(method).parameters
    kwargs = {}
    for attr, value in el.attrib.items():
        key = snake(attr)
        if key not in params:
            errors.append(f"{where}: <{el.tag} {attr}> is not a documented attribute")
            continue
        kwargs[key] = value
    text = (el.text or "").strip() or None
    if text is not None:
        if text_arg is None:
            errors.append(f"{where}: <{el.tag}> takes no text")
        else:
            kwargs[text_arg] = el.text
    child = method(**kwargs)
    for i, sub in enumerate(el):
        build(child, sub, NOUNS, errors, f"{where}/{el.tag}[{i}]")


def check_twiml(docs):
    errors = []
    for n, doc in enumerate(docs):
        where = f"document {n}"
        try:
            root = ET.fromstring(doc.encode("utf-8"))
        except ET.ParseError as e:
            errors.append(f"{where}: not well-formed XML: {e}")
            continue
        if root.tag != "Response":
            errors.append(f"{where}: root is <{root.tag}>, not <Response>")
            continue
        messaging = any(c.tag == "Message" for c in root)
        ours = VoiceResponse() if not messaging else MessagingResponse()
        for i, el in enumerate(root):
            if el.tag == "Response":
                errors.append(f"{where}: nested <Response>")
                continue
            build(ours, el, VERBS, errors, f"{where}/Response[{i}]")
        try:
            mine = ET.canonicalize(doc)
            theirs = ET.canonicalize(ours.to_xml())
        except ET.ParseError as e:
            errors.append(f"{where}: {e}")
            continue
        if mine != theirs:
            errors.append(f"{where}: differs from twilio's rebuild:\n  ours:   {mine}\n  twilio: {theirs}")
    return errors


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    data = json.load(sys.stdin)
    if mode == "sign":
        print(json.dumps(sign(data)))
    elif mode == "twiml":
        errors = check_twiml(data)
        print(json.dumps({"errors": errors, "checked": len(data)}))
        sys.exit(1 if errors else 0)
    else:
        sys.exit("usage: twilio_check.py sign|twiml < json")


if __name__ == "__main__":
    main()
