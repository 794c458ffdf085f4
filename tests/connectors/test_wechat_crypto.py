"""WXBizMsgCrypt against the official vectors W1–W5 and C1–C3 (channels spec §1.7), verbatim, plus failures."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connectors.wechat_crypto import (
    ErrorCode,
    WeChatCrypto,
    WeChatCryptoError,
    WeChatSignatureError,
    encrypted_reply_xml,
    msg_signature,
    plain_signature,
    verify_signature,
)

# -- W1: WeChat Open Platform doc 'message_push' ---------------------------------------------------------
W1_TOKEN = "AAAAA"
W1_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
W1_APPID = "wx134c8103faa5a59e"
W1_TS = "1715943329"
W1_NONCE = "1590219412"
W1_SIGNATURE = "cc0c594499c1634947d5b502f158ee518947db27"
W1_MSG_SIGNATURE = "6c12a4205838198b8fa631b3220723bb07f1015c"
W1_ENCRYPT = (
    "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8Ke"
    "nVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+"
    "RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n"
    "/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wL"
    "ef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg=="
)
W1_MSG = (
    "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n"
    "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n"
    "<CreateTime>1715943329</CreateTime>\n"
    "<MsgType><![CDATA[event]]></MsgType>\n"
    "<Event><![CDATA[debug_demo]]></Event>\n"
    "<debug_str><![CDATA[hello world]]></debug_str>\n"
    "</xml>"
)
W1_REPLY = "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
W1_REPLY_RANDOM = b"999951349e8ee746"
W1_REPLY_ENCRYPT = (
    "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d"
    "6WELwqrGd7jMnV0zv3Zc9Nq7"
)
W1_REPLY_TS = "1713424427"
W1_REPLY_NONCE = "415670741"
W1_REPLY_SIGNATURE = "03e0812039325c2712ef5f0f980fd14c70d6e307"

# -- W2 / W3: Tencent MP samples (Python, C++) -----------------------------------------------------------
MP_TOKEN = "spamtest"
MP_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MP_APPID = "wx2c2769f8efd9abc2"
W2_TS = "1409735669"
W2_NONCE = "1320562132"
W2_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
W2_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2L"
    "dJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6u"
    "x5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJ"
    "pXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCz"
    "pu9GhglF2PE="
)
W2_RANDOM = b"89465c840c5f116f"
W2_MSG = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n"
    "<MsgId>6054768590064713728</MsgId>\n"
    "</xml>"
)
W2_PLAIN_SIGNATURE = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"

W3_TS = "1410349438"
W3_NONCE = "298025754"
W3_MSG_SIGNATURE = "003fee52ecc56afb46c00b5c7721be87860ce785"
W3_ENCRYPT = (
    "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS8jSI/WPeKB5V"
    "Pr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDbOPaE7ukZBTV2YqyzH+UI2AK+"
    "J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtka"
    "KdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjicbP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GT"
    "F/XyE8yGzc4="
)
W3_MSG = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1410349438</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n"
    "<MsgId>6057404712141979648</MsgId>\n"
    "</xml>"
)

# -- W4: Tencent Java WXBizMsgCryptTest (deterministic encrypt) ------------------------------------------
W4_TOKEN = "pamtest"
W4_APPID = "wxb11529c136998cb6"
W4_TS = "1409304348"
W4_NONCE = "xxxxxx"
W4_RANDOM = b"aaaabbbbccccdddd"
W4_MSG = "我是中文abcd123"
W4_ENCRYPT = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
W4_MSG2 = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA["
    "gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType>"
    "<Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId>"
    "<Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]>"
    "</Description></Video></xml>"
)
W4_ENCRYPT2 = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweIm"
    "X9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+"
    "UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0"
    "nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdf"
    "akjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqm"
    "A7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQ"
    "DajPkdPrEeOwofJb"
)

# -- W5: wechatpy check_signature ------------------------------------------------------------------------
W5_TOKEN = "test"
W5_TS = "1410685589"
W5_NONCE = "test"
W5_VALID = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
W5_INVALID = "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"

# -- C1: WeCom official doc/sample -----------------------------------------------------------------------
C1_TOKEN = "QDG6eK"
C1_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
C1_CORP = "wx5823bf96d3bd56c7"
C1_URL_SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
C1_URL_TS = "1409659589"
C1_URL_NONCE = "263014780"
C1_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
C1_ECHO_PLAIN = "1616140317555161061"
C1_POST_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
C1_POST_TS = "1409659813"
C1_POST_NONCE = "1372623149"
C1_POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/s"
    "YYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJ"
    "YuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGU"
    "callcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDY"
    "A5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
C1_POST_MSG = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n"
    "<AgentID>218</AgentID>\n"
    "</xml>"
)

# -- C2: WeCom official python sample (newer values) -----------------------------------------------------
C2_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
C2_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
C2_CORP = "ww1436e0e65a779aee"
C2_URL_SIGNATURE = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
C2_URL_TS = "1476416373"
C2_URL_NONCE = "47744683"
C2_ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
C2_ECHO_PLAIN = "1288432023552776189"
C2_XML_SIGNATURE = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
C2_XML_TS = "1476422779"
C2_XML_NONCE = "1597212914"
C2_XML_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2"
    "AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8"
    "KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQ"
    "DCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
C2_XML_MSG = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)
C2_JSON_SIGNATURE = "e3647471e395139e2308c1fa963f2d648a00b90e"
C2_JSON_TS = "1409659813"
C2_JSON_NONCE = "1372623149"
C2_JSON_ENCRYPT = (
    "cjhLUX7UU4yCSelv1vz7T0zT8huF51bAMVWriNvO1FMegHrQZNrtvRxbwf0fUPsFvwqR0U0fgiJNEA5Y30F2MoI2S7vv3EjVQ68C0cjw"
    "9frBoUE2Hj0BvFp9h3u6Vbsg4lc1C8AtHdaN8orKuNKkLRLuYEL52R1J3v8olJGZRLnRdVKIivixmX/eQpzgeExtp20jI1HxRP1AAZ6x"
    "ZoILdqDPO549LO4WeG+685JRUTdiwcY5fjZlqeMxuT4PpMn1X9OWsS7NRj06Wa5E3Tvg4twjWp39KPfOdRte6P1T4JU="
)
C2_JSON_MSG = (
    '{ "ToUserName": "wx5823bf96d3bd56c7", "FromUserName": :mycreate", "CreateTime": 1409659813, '
    '"MsgType": "text", "Content": "hello", "MsgId": 4561255354251345929, "AgentID": 218}'
)

# -- C3: wechatpy WeCom tests ----------------------------------------------------------------------------
C3_TOKEN = "123456"
C3_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
C3_CORP = "wx49f0ab532d5d035a"
C3_CHECK_SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
C3_CHECK_TS = "1411443780"
C3_CHECK_NONCE = "437374425"
C3_CHECK_NONCE_BAD = "437374424"
C3_ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
C3_ECHO_PLAIN = "5927782489442352469"
C3_DECRYPT_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
C3_TS = "1411525903"
C3_NONCE = "461056294"
C3_DECRYPT_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283d"
    "Gymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwB"
    "iT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54S"
    "NdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91"
    "eBdCRxthuL0="
)
C3_DECRYPT_MSG = (
    "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n"
    "<FromUserName><![CDATA[messense]]></FromUserName>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<MsgId>4363689963896700987</MsgId>\n"
    "<AgentID>1</AgentID>\n"
    "</xml>"
)
C3_RANDOM = b"1234567890123456"
C3_REPLY = (
    "<xml>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
    "<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n"
    "<CreateTime>1411525903</CreateTime>\n"
    "</xml>"
)
C3_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURn"
    "AtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oy"
    "KQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkd"
    "Q39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
C3_REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"


# ===== W1 ===============================================================================================


def test_w1_plain_and_msg_signature() -> None:
    assert plain_signature(W1_TOKEN, W1_TS, W1_NONCE) == W1_SIGNATURE
    assert msg_signature(W1_TOKEN, W1_TS, W1_NONCE, W1_ENCRYPT) == W1_MSG_SIGNATURE


def test_w1_decrypt_message_byte_for_byte() -> None:
    crypto = WeChatCrypto(W1_TOKEN, W1_KEY, W1_APPID)
    assert crypto.decrypt_message(W1_MSG_SIGNATURE, W1_TS, W1_NONCE, W1_ENCRYPT) == W1_MSG


def test_w1_envelope_fields() -> None:
    env = WeChatCrypto(W1_TOKEN, W1_KEY, W1_APPID).open_envelope(W1_ENCRYPT)
    assert env.random16 == b"1205899eaf019bbd"
    assert len(env.msg) == 292
    assert env.receive_id == W1_APPID.encode()


def test_w1_encrypt_reply_deterministic() -> None:
    crypto = WeChatCrypto(W1_TOKEN, W1_KEY, W1_APPID)
    encrypt, signature = crypto.encrypt_reply(W1_REPLY, W1_REPLY_TS, W1_REPLY_NONCE, random16=W1_REPLY_RANDOM)
    assert encrypt == W1_REPLY_ENCRYPT
    assert signature == W1_REPLY_SIGNATURE
    assert crypto.decrypt_message(signature, W1_REPLY_TS, W1_REPLY_NONCE, encrypt) == W1_REPLY


def test_w1_plain_signature_is_not_accepted_as_msg_signature() -> None:
    # Safe mode must verify msg_signature ("不要使用 signature 验证").
    with pytest.raises(WeChatSignatureError):
        WeChatCrypto(W1_TOKEN, W1_KEY, W1_APPID).decrypt_message(W1_SIGNATURE, W1_TS, W1_NONCE, W1_ENCRYPT)


# ===== W2 / W3 ==========================================================================================


def test_w2_decrypt() -> None:
    crypto = WeChatCrypto(MP_TOKEN, MP_KEY, MP_APPID)
    assert msg_signature(MP_TOKEN, W2_TS, W2_NONCE, W2_ENCRYPT) == W2_MSG_SIGNATURE
    assert crypto.decrypt_message(W2_MSG_SIGNATURE, W2_TS, W2_NONCE, W2_ENCRYPT) == W2_MSG
    assert crypto.open_envelope(W2_ENCRYPT).random16 == W2_RANDOM


def test_w2_plain_signature() -> None:
    assert plain_signature(MP_TOKEN, W2_TS, W2_NONCE) == W2_PLAIN_SIGNATURE
    WeChatCrypto(MP_TOKEN, MP_KEY, MP_APPID).verify_plain(W2_PLAIN_SIGNATURE, W2_TS, W2_NONCE)


def test_w3_decrypt() -> None:
    crypto = WeChatCrypto(MP_TOKEN, MP_KEY, MP_APPID)
    assert msg_signature(MP_TOKEN, W3_TS, W3_NONCE, W3_ENCRYPT) == W3_MSG_SIGNATURE
    assert crypto.decrypt_message(W3_MSG_SIGNATURE, W3_TS, W3_NONCE, W3_ENCRYPT) == W3_MSG


# ===== W4 ===============================================================================================


@pytest.mark.parametrize(("msg", "expected"), [(W4_MSG, W4_ENCRYPT), (W4_MSG2, W4_ENCRYPT2)], ids=["msg1", "msg2"])
def test_w4_deterministic_encrypt_and_round_trip(msg: str, expected: str) -> None:
    crypto = WeChatCrypto(W4_TOKEN, MP_KEY, W4_APPID)
    assert crypto.encrypt(msg, random16=W4_RANDOM) == expected
    assert crypto.decrypt(expected) == msg
    encrypt, signature = crypto.encrypt_reply(msg, W4_TS, W4_NONCE, random16=W4_RANDOM)
    assert encrypt == expected
    assert crypto.decrypt_message(signature, W4_TS, W4_NONCE, encrypt) == msg


def test_w4_illegal_aes_key() -> None:
    with pytest.raises(WeChatCryptoError) as info:
        WeChatCrypto(W4_TOKEN, "abcde", W4_APPID)
    assert info.value.code == ErrorCode.ILLEGAL_AES_KEY


def test_w4_validate_signature_error() -> None:
    with pytest.raises(WeChatSignatureError) as info:
        WeChatCrypto(W4_TOKEN, MP_KEY, W4_APPID).decrypt_message("12345", W4_TS, W4_NONCE, W4_ENCRYPT)
    assert info.value.code == ErrorCode.VALIDATE_SIGNATURE


# ===== W5 ===============================================================================================


def test_w5_check_signature() -> None:
    expected = plain_signature(W5_TOKEN, W5_TS, W5_NONCE)
    assert expected == W5_VALID
    assert verify_signature(expected, W5_VALID)
    assert verify_signature(expected, W5_VALID.upper())
    assert not verify_signature(expected, W5_INVALID)


# ===== C1 ===============================================================================================


def test_c1_verify_url() -> None:
    crypto = WeChatCrypto(C1_TOKEN, C1_KEY, C1_CORP)
    assert msg_signature(C1_TOKEN, C1_URL_TS, C1_URL_NONCE, C1_ECHOSTR) == C1_URL_SIGNATURE
    assert crypto.verify_url(C1_URL_SIGNATURE, C1_URL_TS, C1_URL_NONCE, C1_ECHOSTR) == C1_ECHO_PLAIN


def test_c1_verify_url_repairs_plus_read_as_space() -> None:
    mangled = C1_ECHOSTR.replace("+", " ")
    assert mangled != C1_ECHOSTR
    crypto = WeChatCrypto(C1_TOKEN, C1_KEY, C1_CORP)
    assert crypto.verify_url(C1_URL_SIGNATURE, C1_URL_TS, C1_URL_NONCE, mangled) == C1_ECHO_PLAIN


def test_c1_decrypt_post() -> None:
    crypto = WeChatCrypto(C1_TOKEN, C1_KEY, C1_CORP)
    assert msg_signature(C1_TOKEN, C1_POST_TS, C1_POST_NONCE, C1_POST_ENCRYPT) == C1_POST_SIGNATURE
    assert crypto.decrypt_message(C1_POST_SIGNATURE, C1_POST_TS, C1_POST_NONCE, C1_POST_ENCRYPT) == C1_POST_MSG


# ===== C2 ===============================================================================================


def test_c2_verify_url() -> None:
    crypto = WeChatCrypto(C2_TOKEN, C2_KEY, C2_CORP)
    assert crypto.verify_url(C2_URL_SIGNATURE, C2_URL_TS, C2_URL_NONCE, C2_ECHOSTR) == C2_ECHO_PLAIN


def test_c2_decrypt_xml_post() -> None:
    crypto = WeChatCrypto(C2_TOKEN, C2_KEY, C2_CORP)
    assert crypto.decrypt_message(C2_XML_SIGNATURE, C2_XML_TS, C2_XML_NONCE, C2_XML_ENCRYPT) == C2_XML_MSG


def test_c2_decrypt_json_post() -> None:
    # The JSON-callback variant uses the same crypto and receive id; only the envelope around it is JSON.
    crypto = WeChatCrypto(C2_TOKEN, C2_KEY, C2_CORP)
    assert msg_signature(C2_TOKEN, C2_JSON_TS, C2_JSON_NONCE, C2_JSON_ENCRYPT) == C2_JSON_SIGNATURE
    assert crypto.decrypt_message(C2_JSON_SIGNATURE, C2_JSON_TS, C2_JSON_NONCE, C2_JSON_ENCRYPT) == C2_JSON_MSG


# ===== C3 ===============================================================================================


def test_c3_check_signature_and_echo() -> None:
    crypto = WeChatCrypto(C3_TOKEN, C3_KEY, C3_CORP)
    assert msg_signature(C3_TOKEN, C3_CHECK_TS, C3_CHECK_NONCE, C3_ECHOSTR) == C3_CHECK_SIGNATURE
    assert crypto.verify_url(C3_CHECK_SIGNATURE, C3_CHECK_TS, C3_CHECK_NONCE, C3_ECHOSTR) == C3_ECHO_PLAIN
    with pytest.raises(WeChatSignatureError):
        crypto.verify_url(C3_CHECK_SIGNATURE, C3_CHECK_TS, C3_CHECK_NONCE_BAD, C3_ECHOSTR)


def test_c3_decrypt_message() -> None:
    crypto = WeChatCrypto(C3_TOKEN, C3_KEY, C3_CORP)
    msg = crypto.decrypt_message(C3_DECRYPT_SIGNATURE, C3_TS, C3_NONCE, C3_DECRYPT_ENCRYPT)
    assert msg == C3_DECRYPT_MSG
    assert "<Content><![CDATA[test]]></Content>" in msg
    assert "<FromUserName><![CDATA[messense]]></FromUserName>" in msg


def test_c3_encrypt_reply_and_envelope() -> None:
    crypto = WeChatCrypto(C3_TOKEN, C3_KEY, C3_CORP)
    encrypt, signature = crypto.encrypt_reply(C3_REPLY, C3_TS, C3_NONCE, random16=C3_RANDOM)
    assert encrypt == C3_REPLY_ENCRYPT
    assert signature == C3_REPLY_SIGNATURE
    assert encrypted_reply_xml(encrypt, signature, C3_TS, C3_NONCE) == (
        f"<xml>\n<Encrypt><![CDATA[{C3_REPLY_ENCRYPT}]]></Encrypt>\n"
        f"<MsgSignature><![CDATA[{C3_REPLY_SIGNATURE}]]></MsgSignature>\n"
        "<TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]></Nonce>\n</xml>"
    )


# ===== failures =========================================================================================


def _raw_encrypt(key_b64: str, plain: bytes) -> str:
    """Encrypt an arbitrary (already padded) plaintext, to build malformed payloads."""
    key = base64.b64decode(key_b64 + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _body(msg: bytes = b"hello", receive_id: bytes = C1_CORP.encode()) -> bytes:
    return b"R" * 16 + len(msg).to_bytes(4, "big") + msg + receive_id


def _pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


def _tamper(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


C1 = WeChatCrypto(C1_TOKEN, C1_KEY, C1_CORP)
_BODY = _body()  # 16 + 4 + 5 + 18 = 43 bytes -> 21 bytes of padding to reach 64


@pytest.mark.parametrize(
    ("encrypt", "code"),
    [
        pytest.param(_raw_encrypt(C1_KEY, _BODY + bytes([0]) * 21), ErrorCode.ILLEGAL_BUFFER, id="pad 0"),
        pytest.param(_raw_encrypt(C1_KEY, b"\x21" * 64), ErrorCode.ILLEGAL_BUFFER, id="pad 33"),
        pytest.param(
            _raw_encrypt(C1_KEY, _BODY + bytes([21]) * 20 + bytes([20])), ErrorCode.ILLEGAL_BUFFER,
            id="pad bytes disagree",
        ),
        # A 16-byte PKCS#7 pad is the classic mistake this module exists to avoid: 43 + 5 = 48 is not 32-aligned.
        pytest.param(_raw_encrypt(C1_KEY, _BODY + bytes([5]) * 5), ErrorCode.DECRYPT_AES, id="16-byte aligned"),
        pytest.param(
            _raw_encrypt(C1_KEY, _pad32(b"R" * 16 + (1000).to_bytes(4, "big") + b"x" * 12)), ErrorCode.ILLEGAL_BUFFER,
            id="msg_len past the end",
        ),
        pytest.param(_raw_encrypt(C1_KEY, b"R" * 10 + bytes([22]) * 22), ErrorCode.ILLEGAL_BUFFER, id="too short"),
        pytest.param(
            _raw_encrypt(C1_KEY, _pad32(_body(b"\xff\xfe"))), ErrorCode.ILLEGAL_BUFFER, id="not UTF-8",
        ),
        pytest.param(C1_POST_ENCRYPT[:-3], ErrorCode.DECODE_BASE64, id="truncated base64"),
        pytest.param(
            base64.b64encode(base64.b64decode(C1_POST_ENCRYPT)[:-16]).decode(), ErrorCode.DECRYPT_AES,
            id="truncated by one AES block",
        ),
        pytest.param(base64.b64encode(b"").decode(), ErrorCode.DECRYPT_AES, id="empty"),
        pytest.param("not base64!", ErrorCode.DECODE_BASE64, id="non-base64 chars"),
        pytest.param("密文", ErrorCode.DECODE_BASE64, id="non-ASCII"),
        # CBC: flipping a bit of the next-to-last block flips the same bit of the last plaintext byte, pad 30 -> 31.
        pytest.param(_tamper(C1_POST_ENCRYPT, -17), ErrorCode.ILLEGAL_BUFFER, id="tampered pad byte"),
    ],
)
def test_malformed_ciphertext_raises_crypto_error(encrypt: str, code: ErrorCode) -> None:
    with pytest.raises(WeChatCryptoError) as info:
        C1.decrypt(encrypt)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_tampered_ciphertext_fails_signature_before_decrypting() -> None:
    tampered = _tamper(C1_POST_ENCRYPT, 20)
    with pytest.raises(WeChatSignatureError):
        C1.decrypt_message(C1_POST_SIGNATURE, C1_POST_TS, C1_POST_NONCE, tampered)


def test_tampered_first_block_garbles_the_length_or_receive_id() -> None:
    # Flipping a bit in ciphertext block 0 flips the same bit of plaintext block 1 (msg_len lives at 16..19).
    with pytest.raises(WeChatCryptoError):
        C1.decrypt(_tamper(C1_POST_ENCRYPT, 3))


@pytest.mark.parametrize(
    ("signature", "timestamp", "nonce"),
    [
        pytest.param("0" * 40, C1_POST_TS, C1_POST_NONCE, id="wrong signature"),
        pytest.param(C1_POST_SIGNATURE, "1409659814", C1_POST_NONCE, id="other timestamp"),
        pytest.param(C1_POST_SIGNATURE, C1_POST_TS, "1372623148", id="other nonce"),
        pytest.param("", C1_POST_TS, C1_POST_NONCE, id="empty"),
        pytest.param("签名" * 20, C1_POST_TS, C1_POST_NONCE, id="non-ASCII"),
    ],
)
def test_wrong_signature(signature: str, timestamp: str, nonce: str) -> None:
    with pytest.raises(WeChatSignatureError):
        C1.decrypt_message(signature, timestamp, nonce, C1_POST_ENCRYPT)


def test_wrong_token_fails_signature() -> None:
    with pytest.raises(WeChatSignatureError):
        WeChatCrypto("other", C1_KEY, C1_CORP).verify_url(C1_URL_SIGNATURE, C1_URL_TS, C1_URL_NONCE, C1_ECHOSTR)


def test_wrong_plain_signature() -> None:
    with pytest.raises(WeChatSignatureError):
        WeChatCrypto(W5_TOKEN, MP_KEY, MP_APPID).verify_plain(W5_INVALID, W5_TS, W5_NONCE)


def test_wrong_app_id() -> None:
    crypto = WeChatCrypto(C1_TOKEN, C1_KEY, "wx0000000000000000")
    with pytest.raises(WeChatCryptoError) as info:
        crypto.decrypt_message(C1_POST_SIGNATURE, C1_POST_TS, C1_POST_NONCE, C1_POST_ENCRYPT)
    assert info.value.code == ErrorCode.VALIDATE_RECEIVE_ID
    assert not isinstance(info.value, WeChatSignatureError)


def test_wrong_aes_key_is_a_crypto_error_not_a_crash() -> None:
    crypto = WeChatCrypto(C1_TOKEN, C2_KEY, C1_CORP)
    with pytest.raises(WeChatCryptoError):
        crypto.decrypt_message(C1_POST_SIGNATURE, C1_POST_TS, C1_POST_NONCE, C1_POST_ENCRYPT)


@pytest.mark.parametrize(
    "key",
    ["", "abcde", C1_KEY[:-1], C1_KEY + "A", C1_KEY[:-1] + "!", C1_KEY[:-1] + "中"],
    ids=["empty", "abcde", "42 chars", "44 chars", "non-base64", "non-ASCII"],
)
def test_bad_key(key: str) -> None:
    with pytest.raises(WeChatCryptoError) as info:
        WeChatCrypto(C1_TOKEN, key, C1_CORP)
    assert info.value.code == ErrorCode.ILLEGAL_AES_KEY


@pytest.mark.parametrize("size", [0, 15, 17])
def test_bad_random_prefix_length(size: int) -> None:
    with pytest.raises(WeChatCryptoError):
        C1.encrypt("hi", random16=b"x" * size)


@pytest.mark.parametrize("msg", ["", "x", "中" * 4, "a" * 25, "a" * 26, "a" * 27, "客服 " * 500])
def test_round_trip_with_random_prefix(msg: str) -> None:
    # 16 + 4 + 18 bytes of overhead: 25 chars need pad 1, 26 chars a whole 32-byte block of padding.
    first, second = C1.encrypt(msg), C1.encrypt(msg)
    assert first != second  # the random prefix changes every ciphertext
    assert C1.decrypt(first) == C1.decrypt(second) == msg


@pytest.mark.parametrize(
    ("timestamp", "nonce"),
    [("12a", "n"), ("١٢٣", "n"), ("", "n"), ("1", "x]]><evil/>")],
    ids=["letters", "arabic digits", "empty", "CDATA break-out"],
)
def test_reply_xml_rejects_injection(timestamp: str, nonce: str) -> None:
    with pytest.raises(WeChatCryptoError) as info:
        encrypted_reply_xml("abc=", "0" * 40, timestamp, nonce)
    assert info.value.code == ErrorCode.GEN_RETURN_XML
