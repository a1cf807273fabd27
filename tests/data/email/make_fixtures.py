#!/usr/bin/env python3
"""Writes the email fixtures of this folder (kept in git; rerun only to change them, then
update tests/ingest/test_email.c and the seed corpus tests/fuzz/corpus/email).

The messages are encoded the way the mail clients named in their X-Mailer headers write
them: GBK/Big5/Latin-1 bodies in base64 or quoted-printable, RFC 2047 encoded words in
Subject, display names and (Foxmail, Outlook) attachment file names, RFC 2231 file names
(Thunderbird), CRLF line ends. bad/ holds broken messages the parser must survive;
bad/fuzz_*.eml are inputs found by fuzzing, kept byte for byte (not written here).
The expected contacts (<name>.json, bad/expected.json) are written by hand."""
import base64
import os
import quopri
from email import policy
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

HERE = os.path.dirname(os.path.abspath(__file__))
SMTP = policy.SMTP.clone(max_line_length=76)  # CRLF, as on the wire


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def client_order(msg):
    """Puts the MIME headers after the others, as mail clients write them, and drops the
    MIME-Version that Python's classes add to every part (clients write it once)."""
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]
    for name in ("MIME-Version", "Content-Type", "Content-Transfer-Encoding"):
        values = msg.get_all(name) or []
        del msg[name]
        for v in values:
            msg[name] = v
    return msg


def b_word(text, charset):
    """One RFC 2047 "B" encoded word."""
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def q_word(text, charset):
    """One RFC 2047 "Q" encoded word (spaces as '_')."""
    out = []
    for b in text.encode(charset):
        c = chr(b)
        if c == " ":
            out.append("_")
        elif c.isalnum() and b < 128:
            out.append(c)
        else:
            out.append("=%02X" % b)
    return "=?%s?Q?%s?=" % (charset, "".join(out))


def fake_pdf():
    """A small, well-formed one-page PDF (2 KiB of content stream padding included)."""
    body = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
            b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
            b"4 0 obj << /Length 2048 >> stream\n" + bytes(range(256)) * 8 +
            b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    return body


def gbk_multipart():
    """Foxmail on Windows (zh-CN): mixed { alternative { plain GBK, html GBK }, pdf }."""
    outer = MIMEMultipart("mixed", boundary="----=_NextPart_664C0F52_0A3B2E40_3C6D1A21")
    outer["From"] = "%s <Zhang.Wei@Example.COM.cn>" % b_word("张伟", "gbk")
    outer["To"] = "%s <kf@shop.cn>" % b_word("客服中心", "gbk")
    outer["Subject"] = b_word("订单退款还没有到账", "gb2312")
    outer["Date"] = "Tue, 21 May 2024 09:12:34 +0800"
    outer["Message-ID"] = "<202405210912341283574@example.com.cn>"
    outer["In-Reply-To"] = "<kf-reply-20240520140000@shop.cn>"
    outer["References"] = ("<order-202405181030@example.com.cn>\r\n"
                           "\t<kf-reply-20240520140000@shop.cn>")
    outer["X-Mailer"] = "Foxmail 7.2.25.228[cn]"
    text = ("您好，\n\n"
            "我的订单 202405181030 申请退款已经三天了，还没有到账。\n"
            "金额 1299 元，请尽快处理，谢谢！\n\n"
            "张伟\n\n"
            "在 2024年5月20日 14:00，客服 <kf@shop.cn> 写道：\n"
            "> 您好，退款将在 1-3 个工作日内原路退回。\n"
            "> 如有疑问请随时联系。\n")
    html = ("<html><body><div>您好，</div><div><br></div>"
            "<div>我的订单 202405181030 申请退款已经三天了，还没有到账。</div>"
            "<div>金额 1299 元，请尽快处理，谢谢！</div><div><br></div><div>张伟</div>"
            "<blockquote>在 2024年5月20日 14:00，客服 &lt;kf@shop.cn&gt; 写道：<br>"
            "您好，退款将在 1-3 个工作日内原路退回。</blockquote></body></html>")
    alt = MIMEMultipart("alternative", boundary="----=_NextPart_664C0F52_0A3B2E40_7E1F0B33")
    alt.attach(MIMEText(text.replace("\n", "\r\n"), "plain", "gbk"))
    alt.attach(MIMEText(html, "html", "gbk"))
    outer.attach(alt)
    pdf = MIMEApplication(fake_pdf(), "pdf")
    name = b_word("退款凭证.pdf", "gbk")  # Foxmail: encoded word inside the quotes
    pdf.replace_header("Content-Type", 'application/pdf; name="%s"' % name)
    pdf.add_header("Content-Disposition", 'attachment; filename="%s"' % name)
    outer.attach(pdf)
    write("gbk_multipart_attachment_reply.eml", client_order(outer).as_bytes(policy=SMTP))


def big5():
    """Outlook Express (zh-TW): a single Big5 quoted-printable part."""
    body = ("請問會員積分如何兌換？\n"
            "我上個月在台北門市消費了 3,200 元，積分還沒有入帳。\n\n"
            "謝謝！\n陳美\n")
    qp = quopri.encodestring(body.encode("big5")).replace(b"\n", b"\r\n")
    head = ("From: %s <Mei.Chen@Example.TW>\r\n"
            "To: service@shop.com.tw\r\n"
            "Subject: %s\r\n"
            "Date: Tue, 21 May 2024 09:30:00 +0800\r\n"
            "Message-ID: <000a01dbab12$5c6e7f80$0201a8c0@MEI-PC>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain;\r\n\tcharset=\"big5\"\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "X-Mailer: Microsoft Outlook Express 6.00.2900.5931\r\n\r\n"
            % (q_word("陳美", "big5"), b_word("會員積分兌換", "big5")))
    write("big5.eml", head.encode() + qp)


def html_only():
    """A web mail client sending HTML only, ISO-8859-1, quoted-printable."""
    html = ("<!DOCTYPE html>\n<html><head>\n"
            "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">\n"
            "<title>Commande A-7781</title>\n"
            "<style type=\"text/css\">p { color: #c00; } .sig { font-size: 9pt; }</style>\n"
            "<script type=\"text/javascript\">if (a < b && c > d) { track(\"open\"); }</script>\n"
            "</head><body>\n"
            "<p>Bonjour,</p>\n"
            "<p>Ma commande n&#176;&nbsp;A-7781 est arriv\xe9e ab\xeem\xe9e &amp; le carton "
            "\xe9tait ouvert.<br>\n"
            "Le &quot;mug&quot; &lt;Caf\xe9&gt; est cass\xe9 &#x2014; merci d'envoyer un "
            "remplacement.</p>\n"
            "<div class=\"sig\">Cordialement,</div><div>Ren\xe9e Lef\xe8vre</div>\n"
            "</body></html>\n")
    msg = MIMEText(html, "html", "iso-8859-1")
    msg.replace_header("Content-Transfer-Encoding", "quoted-printable")
    msg.set_payload(quopri.encodestring(html.encode("iso-8859-1")).decode("ascii"))
    msg["From"] = "%s <renee.lefevre@example.fr>" % q_word("Renée Lefèvre", "iso-8859-1")
    msg["To"] = "support@shop.com"
    msg["Subject"] = q_word("Commande A-7781 arrivée abîmée", "iso-8859-1")
    msg["Date"] = "Wed, 22 May 2024 08:15:00 +0200"
    msg["Message-ID"] = "<a1b2c3d4.7781@webmail.example.fr>"
    write("html_only.eml", client_order(msg).as_bytes(policy=SMTP))


def latin1_outlook():
    """Outlook 16 (es-ES) replying above the quoted original, ISO-8859-1, QP."""
    text = ("Hola,\r\n\r\n"
            "La factura del pedido 5521 indica 120 EUR en lugar de 102 EUR.\r\n"
            "\xbfPueden corregirla, por favor?\r\n\r\n"
            "Saludos,\r\nJos\xe9 Garc\xeda\r\n\r\n"
            "-----Original Message-----\r\n"
            "From: Atenci\xf3n al cliente <soporte@tienda.es>\r\n"
            "Sent: Tuesday, May 21, 2024 4:05 PM\r\n"
            "To: Jos\xe9 Garc\xeda <jose.garcia@example.es>\r\n"
            "Subject: RE: Factura n\xba 5521\r\n\r\n"
            "Hemos revisado su pedido.\r\n")
    qp = quopri.encodestring(text.encode("iso-8859-1"))
    head = ("From: %s <Jose.Garcia@Example.ES>\r\n"
            "To: \"Atencion al cliente\" <soporte@tienda.es>\r\n"
            "Subject: %s\r\n"
            "Thread-Topic: Factura 5521\r\n"
            "Thread-Index: AdqsYv1cX2x0VQ3bTy2Qm9n3pG0A1g==\r\n"
            "Date: Wed, 22 May 2024 10:03:11 +0200\r\n"
            "Message-ID: <AM0PR10MB3188A1B2C3D4E5F6@AM0PR10MB3188.eurprd10.prod.outlook.com>\r\n"
            "In-Reply-To: <DB9PR01MB7777.soporte@tienda.es>\r\n"
            "References: <DB9PR01MB7777.soporte@tienda.es>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=\"iso-8859-1\"\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "X-Mailer: Microsoft Outlook 16.0\r\n\r\n"
            % (q_word("José García", "iso-8859-1"), q_word("RE: Factura nº 5521", "iso-8859-1")))
    write("latin1_outlook_reply.eml", head.encode() + qp)


def utf8_reply_to():
    """A web form relay: From is the form robot, Reply-To the customer; UTF-8, 8bit."""
    body = ("结账页面闪退（iOS 17.4，App 版本 5.2.1），错误代码 E-PAY-503。\n"
            "The app crashes on the checkout page since this morning.\n\n"
            "订单号：SO-88213\n")
    head = ("From: Web Form <No-Reply@Forms.Example.ORG>\r\n"
            "Reply-To: %s <Wang.Wei@Example.ORG>\r\n"
            "To: support@shop.com\r\n"
            "Subject: %s\r\n"
            "Date: Thu, 23 May 2024 07:00:00 -0500\r\n"
            "Message-ID: <form-20240523-0042@forms.example.org>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            % (b_word("王伟", "utf-8"), b_word("App 结账闪退 / crash at checkout", "utf-8")))
    write("utf8_reply_to.eml", head.encode() + body.replace("\n", "\r\n").encode("utf-8"))


def bad():
    write("bad/no_from.eml",
          b"To: support@shop.com\r\nSubject: no sender\r\n"
          b"Date: Thu, 23 May 2024 07:00:00 +0000\r\nMessage-ID: <nofrom@x.example>\r\n\r\n"
          b"Who am I?\r\n")
    # A multipart cut inside the second part: no closing boundary, base64 cut mid-quantum.
    write("bad/truncated_boundary.eml",
          b"From: Li Lei <li.lei@example.cn>\r\nSubject: cut\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
          b"--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
          b"first part survives\r\n"
          b"--XYZ\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
          b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQoL\r\nDA0O")
    deep = [b"From: a@example.cn\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    for i in range(20):
        deep.append(b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (i, i))
    deep.append(b"Content-Type: text/plain\r\n\r\ninnermost\r\n")
    for i in reversed(range(20)):
        deep.append(b"--b%d--\r\n" % i)
    write("bad/deep_nesting_20.eml", b"".join(deep))
    write("bad/unknown_charset.eml",
          b"From: a@example.cn\r\nSubject: =?x-no-such-charset?B?w6k=?=\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: text/plain; charset=\"x-no-such-charset\"\r\n"
          b"Content-Transfer-Encoding: 8bit\r\n\r\n"
          b"caf\xc3\xa9 and a stray \xff byte\r\n")
    # NUL bytes in header values (and one in a field name and the body): best effort.
    write("bad/nul_in_headers.eml",
          b"From: Nul Name <nul@example.cn>\r\nTo: kf@shop.cn\x00\r\n"
          b"Subject: before\x00after\r\nX-Bro\x00ken: 1\r\n"
          b"Message-ID: <n\x00ul@example.cn>\r\n\r\nbody\x00text\r\n")
    # A NUL inside the sender's address: no usable identity.
    write("bad/nul_in_from.eml",
          b"From: Nul Name <nul\x00@example.cn>\r\nSubject: x\r\n\r\nbody\r\n")


if __name__ == "__main__":
    gbk_multipart()
    big5()
    html_only()
    latin1_outlook()
    utf8_reply_to()
    bad()
