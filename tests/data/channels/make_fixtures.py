#!/usr/bin/env python3
"""Writes the real-format channel fixtures of this folder (kept in git; rerun only to
change them). Emails are built with Python's email package the way mail clients encode
them (GBK/Big5/Latin-1 bodies, base64 and quoted-printable, RFC 2047 headers, RFC 2231
file names); WeChat pushes follow the official-account XML format."""
import base64
import hashlib
import json
import os
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def gbk_multipart():
    outer = MIMEMultipart("mixed")
    # Encoded words exactly as Chinese mail clients write them.
    outer["From"] = "=?GBK?B?%s?= <Li.Na@Example.COM.cn>" % base64.b64encode("李娜".encode("gbk")).decode()
    outer["To"] = "kf@shop.cn"
    outer["Subject"] = "=?GB2312?B?%s?=" % base64.b64encode("订单退款问题".encode("gb2312")).decode()
    outer["Message-ID"] = "<20240520140000.gbk.1@mail.example.com.cn>"
    outer["In-Reply-To"] = "<reply-2024051910@shop.cn>"
    outer["References"] = "<first-2024051809@shop.cn> <reply-2024051910@shop.cn>"
    outer["Date"] = "Mon, 20 May 2024 14:00:00 +0800"
    alt = MIMEMultipart("alternative")
    text = ("您好，我的订单 202405201234 申请退款已经三天了，还没有到账。\n"
            "金额 1299 元，请尽快处理。\n\n"
            "在 2024年5月19日 10:00，客服 <kf@shop.cn> 写道：\n"
            "> 您好，退款将在1-3个工作日内原路退回。\n"
            "> 如有疑问请随时联系。\n")
    alt.attach(MIMEText(text, "plain", "gbk"))
    alt.attach(MIMEText("<p>您好，我的订单 202405201234 申请退款已经三天了</p>", "html", "gbk"))
    outer.attach(alt)
    pdf = MIMEApplication(b"%PDF-1.4\n" + bytes(range(256)) * 8, "pdf")
    pdf.add_header("Content-Disposition", "attachment",
                   filename=("gbk", "", "退款凭证.pdf"))
    outer.attach(pdf)
    write("email/gbk_multipart_attachment_reply.eml", outer.as_bytes())


def big5():
    msg = MIMEText("請問會員積分如何兌換？謝謝。\n", "plain", "big5")
    del msg["Content-Transfer-Encoding"]
    msg.replace_header("Content-Type", 'text/plain; charset="big5"')
    import quopri
    body = quopri.encodestring("請問會員積分如何兌換？謝謝。\n".encode("big5"))
    raw = ("From: Chen Mei <mei.chen@example.tw>\r\nTo: kf@shop.cn\r\n"
           "Subject: %s\r\nMessage-ID: <big5.2@example.tw>\r\n"
           "Date: Tue, 21 May 2024 09:30:00 +0800\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=\"big5\"\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           % ("=?Big5?B?%s?=" % base64.b64encode("會員積分".encode("big5")).decode())).encode() + body.replace(b"\n", b"\r\n")
    write("email/big5.eml", raw)


def html_only():
    html = ("<html><head><style>p { color: red; }</style>"
            "<script>alert('x')</script></head><body>"
            "<p>Bonjour,</p><p>My order&nbsp;#A-77 arrived damaged &amp; the box was open.<br>"
            "Caf&eacute; &lt;mug&gt; broken &#8212; please send a replacement.</p>"
            "<div>Ren&#233;e</div></body></html>")
    msg = MIMEText(html, "html", "iso-8859-1")
    msg["From"] = "Renee Martin <renee@example.fr>"
    msg["To"] = "support@shop.com"
    msg["Subject"] = "Damaged order"
    msg["Message-ID"] = "<html.3@example.fr>"
    msg["Date"] = "Wed, 22 May 2024 08:15:00 +0200"
    write("email/html_only.eml", msg.as_bytes())


def latin1_outlook():
    text = ("Hello,\r\n\r\nThe invoice for order 5521 shows 120 EUR instead of 102 EUR.\r\n"
            "Regards,\r\nJos\xe9\r\n\r\n-----Original Message-----\r\n"
            "From: Support <support@shop.com>\r\nSent: Tuesday, May 21, 2024 4:00 PM\r\n"
            "Subject: RE: invoice\r\n\r\nWe will check.\r\n")
    msg = MIMEText(text, "plain", "iso-8859-1")
    msg["From"] = "=?ISO-8859-1?Q?Jos=E9_Garc=EDa?= <jose.garcia@example.es>"
    msg["To"] = "support@shop.com"
    msg["Subject"] = "RE: invoice"
    msg["Message-ID"] = "<outlook.4@example.es>"
    msg["In-Reply-To"] = "<support-77@shop.com>"
    msg["Date"] = "Wed, 22 May 2024 10:00:00 +0200"
    write("email/latin1_outlook_reply.eml", msg.as_bytes())


def utf8_reply_to():
    msg = MIMEText("App crashes on the checkout page (iOS 17.4, version 5.2.1). Error: E-PAY-503\n",
                   "plain", "utf-8")
    msg["From"] = "Noreply Forms <forms@example.org>"
    msg["Reply-To"] = "Wang Wei <Wang.Wei@Example.ORG>"
    msg["To"] = "support@shop.com"
    msg["Subject"] = "App crash"
    msg["Message-ID"] = "<utf8.5@example.org>"
    msg["Date"] = "Thu, 23 May 2024 12:00:00 +0000"
    write("email/utf8_reply_to.eml", msg.as_bytes())


WECHAT = {
    "text.xml": "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName>"
                "<FromUserName><![CDATA[oABC123]]></FromUserName><CreateTime>1716184800</CreateTime>"
                "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[我的快递三天没更新了 <急>]]></Content>"
                "<MsgId>24612345678901234</MsgId></xml>",
    "voice.xml": "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName>"
                 "<FromUserName><![CDATA[oABC123]]></FromUserName><CreateTime>1716184900</CreateTime>"
                 "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_voice_1]]></MediaId>"
                 "<Format><![CDATA[amr]]></Format><Recognition><![CDATA[我要退货]]></Recognition>"
                 "<MsgId>24612345678901235</MsgId></xml>",
    "voice_norecog.xml": "<xml><ToUserName>gh_shop</ToUserName><FromUserName>oXYZ</FromUserName>"
                         "<CreateTime>1716184950</CreateTime><MsgType>voice</MsgType>"
                         "<MediaId>media_voice_2</MediaId><Format>speex</Format>"
                         "<MsgId>24612345678901236</MsgId></xml>",
    "image.xml": "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName>"
                 "<FromUserName><![CDATA[oABC123]]></FromUserName><CreateTime>1716185000</CreateTime>"
                 "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.example/p.jpg]]></PicUrl>"
                 "<MediaId><![CDATA[media_img_1]]></MediaId><MsgId>24612345678901237</MsgId></xml>",
    "event_subscribe.xml": "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName>"
                           "<FromUserName><![CDATA[oNEW1]]></FromUserName><CreateTime>1716185100</CreateTime>"
                           "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>",
    "event_click.xml": "<xml><ToUserName><![CDATA[gh_shop]]></ToUserName>"
                       "<FromUserName><![CDATA[oABC123]]></FromUserName><CreateTime>1716185200</CreateTime>"
                       "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>"
                       "<EventKey><![CDATA[MENU_HUMAN_AGENT]]></EventKey></xml>",
    "event_unsubscribe.xml": "<xml><ToUserName>gh_shop</ToUserName><FromUserName>oOLD</FromUserName>"
                             "<CreateTime>1716185300</CreateTime><MsgType>event</MsgType>"
                             "<Event>unsubscribe</Event></xml>",
    "bad_billion_laughs.xml": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                              '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                              "<xml><ToUserName>a</ToUserName><FromUserName>&lol2;</FromUserName>"
                              "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content>"
                              "<MsgId>1</MsgId></xml>",
    "bad_missing_from.xml": "<xml><ToUserName>gh_shop</ToUserName><CreateTime>1716184800</CreateTime>"
                            "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>",
    "bad_create_time.xml": "<xml><ToUserName>gh_shop</ToUserName><FromUserName>o1</FromUserName>"
                           "<CreateTime>yesterday</CreateTime><MsgType>text</MsgType>"
                           "<Content>hi</Content><MsgId>1</MsgId></xml>",
    "bad_malformed.xml": "<xml><ToUserName>gh_shop</ToUserName><FromUserName>o1",
    "bad_deep.xml": "<xml>" + "<a>" * 100 + "x" + "</a>" * 100 + "</xml>",
}


def wechat():
    for name, xml in WECHAT.items():
        write("wechat/" + name, xml.encode("utf-8"))
    write("wechat/bad_invalid_utf8.xml",
          b"<xml><ToUserName>a</ToUserName><FromUserName>\xff\xfe</FromUserName>"
          b"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>")
    token = "dev-wechat-token"
    cases = []
    for ts, nonce in (("1716184800", "n1"), ("1716184801", "abc"), ("1716190000", "0")):
        sig = hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()
        cases.append({"token": token, "timestamp": ts, "nonce": nonce, "signature": sig, "valid": True})
        cases.append({"token": token, "timestamp": ts, "nonce": nonce + "x", "signature": sig, "valid": False})
        cases.append({"token": token, "timestamp": ts, "nonce": nonce, "signature": sig.upper(), "valid": False})
        cases.append({"token": token, "timestamp": ts, "nonce": nonce, "signature": sig[:-1], "valid": False})
    write("wechat/signatures.json", (json.dumps(cases, indent=1) + "\n").encode())


if __name__ == "__main__":
    gbk_multipart()
    big5()
    html_only()
    latin1_outlook()
    utf8_reply_to()
    wechat()
