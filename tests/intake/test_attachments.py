"""Attachment names and kinds (issue 19): nameless parts, forwarded messages, S/MIME and PGP signatures."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import select

from casemgr.db import read_session
from casemgr.intake import service
from casemgr.intake.models import Attachment
from casemgr.intake.parse import parse_message

GIF = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01").decode()


def _mail() -> bytes:
    return f"""From: Ann <ann@example.org>
To: complaints@example.com
Subject: see attached
Message-ID: <att@example.org>
MIME-Version: 1.0
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"

--sig
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain; charset=utf-8

My statement and the bank's letter are attached.
--mix
Content-Type: image/gif
Content-ID: <part1.logo@example.org>
Content-Transfer-Encoding: base64

{GIF}
--mix
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--mix
Content-Type: message/rfc822

From: Bank <letters@bank.example>
To: ann@example.org
Subject: Your overdraft fee / March
Message-ID: <inner@bank.example>

We charged an overdraft fee.
--mix
Content-Type: application/pgp-signature; name="signature.asc"

-----BEGIN PGP SIGNATURE-----
iQEzBAEBCAAdFiEE
-----END PGP SIGNATURE-----
--mix--
--sig
Content-Type: application/pkcs7-signature; name="smime.p7s"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="smime.p7s"

MIIGKwYJKoZIhvcNAQcCoIIGHDCCBhgCAQExDzANBglghkgBZQMEAgEFADALBgkq
--sig--
""".replace("\n", "\r\n").encode()


def test_nameless_parts_forwards_and_signatures_are_named_and_marked() -> None:
    pm = parse_message(_mail())
    assert pm.body_text == "My statement and the bank's letter are attached."
    by_name = {a.filename: a for a in pm.attachments}
    assert set(by_name) == {"image-1.gif", "attachment-2.pdf", "Your overdraft fee - March.eml", "signature.asc",
                            "smime.p7s"}
    assert by_name["image-1.gif"].content_id == "<part1.logo@example.org>"
    assert by_name["Your overdraft fee - March.eml"].content_type == "message/rfc822"
    assert b"We charged an overdraft fee." in by_name["Your overdraft fee - March.eml"].data
    kinds = {name: str(a.kind) for name, a in by_name.items()}
    assert kinds == {"image-1.gif": "document", "attachment-2.pdf": "document",
                     "Your overdraft fee - March.eml": "document", "signature.asc": "signature",
                     "smime.p7s": "signature"}


def test_signatures_are_stored_marked_and_shown_as_such(agent_client: Any) -> None:
    res = service.ingest_raw(_mail())
    assert res.status == "case"
    with read_session() as s:
        rows = {a.filename: a for a in s.execute(select(Attachment)).scalars()}
    assert {n for n, a in rows.items() if a.kind == "signature"} == {"signature.asc", "smime.p7s"}
    assert rows["image-1.gif"].kind == "document"
    page = agent_client.get(f"/cases/{res.case_id}")
    assert page.status_code == 200
    assert page.text.count("email signature, not a customer document") == 2
    assert "Your overdraft fee - March.eml" in page.text
