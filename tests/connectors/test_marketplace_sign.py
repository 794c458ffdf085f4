"""Marketplace request signing against the official vectors of channels spec §5.4, and the signed webhook."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.base import VerificationError
from connectors.marketplace_sign import (
    ParamValue,
    SignatureError,
    check_webhook,
    jd_param_json,
    jd_sign,
    pdd_sign,
    top_sign,
    verify_sign,
    webhook_signature,
)

# -- Taobao TOP, doc 101617 -----------------------------------------------------------------------------
TOP1_SECRET = "helloworld"
TOP1_PARAMS: dict[str, ParamValue] = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}
TOP1_STRING = (
    "helloworldapp_key12345678fieldsnum_iid,title,nick,price,numformatjsonmethodtaobao.item.seller.get"
    "num_iid11223344sessiontestsign_methodmd5timestamp2016-01-01 12:00:00v2.0helloworld"
)
TOP1_SIGN = "66987CB115214E59E6EC978214934FB8"

# -- Taobao TOP, older doc example ----------------------------------------------------------------------
TOP2_SECRET = "test"
TOP2_PARAMS: dict[str, ParamValue] = {
    "method": "taobao.user.seller.get",
    "timestamp": "2013-05-06 13:52:03",
    "format": "xml",
    "app_key": "test",
    "v": "2.0",
    "fields": "nick",
    "sign_method": "md5",
    "session": "test",
}
TOP2_STRING = (
    "testapp_keytestfieldsnickformatxmlmethodtaobao.user.seller.getsessiontestsign_methodmd5"
    "timestamp2013-05-06 13:52:03v2.0test"
)
TOP2_SIGN = "72CB4D809B375A54502C09360D879C64"

# -- Pinduoduo ------------------------------------------------------------------------------------------
PDD_SECRET = "testSecret"
PDD_PARAMS: dict[str, ParamValue] = {
    "type": "pdd.order.number.list.get",
    "client_id": "1",
    "page": "1",
    "page_size": "10",
    "data_type": "XML",
    "timestamp": "1480411125",
    "order_status": "1",
    "access_token": "asd78172s8ds9a921j9qqwda12312w1w21211",
}
PDD_STRING = (
    "testSecretaccess_tokenasd78172s8ds9a921j9qqwda12312w1w21211client_id1data_typeXMLorder_status1page1"
    "page_size10timestamp1480411125typepdd.order.number.list.gettestSecret"
)
PDD_SIGN = "E4DE3ED21002510DED352819E7AE6775"

# -- JD JOS ---------------------------------------------------------------------------------------------
JD_SECRET = "yourappSecret"
JD_PARAM_JSON = (
    '{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1",'
    '"page_size":"200","start_date":null}'
)
JD_PARAMS: dict[str, ParamValue] = {
    "360buy_param_json": JD_PARAM_JSON,
    "access_token": "yourtoken",
    "app_key": "yourappkey",
    "method": "jingdong.pop.order.search",
    "timestamp": "2021-05-07 09:20:39.683+0800",
    "v": "2.0",
}
JD_SIGN = "D70825340F4084360B9362B60DFD7930"


Signer = Callable[[Mapping[str, ParamValue], str], str]

# ===== official vectors =================================================================================


@pytest.mark.parametrize(
    ("params", "secret", "string", "sign"),
    [
        pytest.param(TOP1_PARAMS, TOP1_SECRET, TOP1_STRING, TOP1_SIGN, id="doc 101617"),
        pytest.param(TOP2_PARAMS, TOP2_SECRET, TOP2_STRING, TOP2_SIGN, id="older doc"),
    ],
)
def test_top_md5_vectors(params: dict[str, ParamValue], secret: str, string: str, sign: str) -> None:
    # The printed sign string is the MD5 input; check both so a mismatch points at the right step.
    assert hashlib.md5(string.encode()).hexdigest().upper() == sign
    assert top_sign(params, secret) == sign
    assert top_sign(params, secret, "md5") == sign


def test_top_md5_excludes_sign_empty_values_and_files() -> None:
    noisy: dict[str, ParamValue] = {
        **TOP1_PARAMS,
        "sign": "WHATEVER",
        "empty": "",
        "missing": None,
        "image": b"\x89PNG...",
    }
    assert top_sign(noisy, TOP1_SECRET) == TOP1_SIGN


def test_top_hmac_rfc2202_case1() -> None:
    assert top_sign({"Hi": " There"}, b"\x0b" * 16, "hmac") == "9294727A3638BB1C13F48EF8158BFC9D"


def test_top_hmac_sha256_rfc4231_case1() -> None:
    expected = "B0344C61D8DB38535CA8AFCEAF0BF12B881DC200C9833DA726E9376C2E32CFF7"
    assert top_sign({"Hi": " There"}, b"\x0b" * 20, "hmac-sha256") == expected


def test_top_hmac_is_not_wrapped() -> None:
    # "hmac" uses the secret only as the key: the md5 wrapping must not leak into it.
    assert top_sign(TOP1_PARAMS, TOP1_SECRET, "hmac") != TOP1_SIGN
    assert top_sign({"Hi": " There", "sign": "x", "e": ""}, b"\x0b" * 16, "hmac") == "9294727A3638BB1C13F48EF8158BFC9D"


def test_top_unknown_method() -> None:
    bad: str = "sha1"
    with pytest.raises(ValueError, match="sign_method"):
        top_sign(TOP1_PARAMS, TOP1_SECRET, bad)  # type: ignore[arg-type]


def test_pdd_vector() -> None:
    assert hashlib.md5(PDD_STRING.encode()).hexdigest().upper() == PDD_SIGN
    assert pdd_sign(PDD_PARAMS, PDD_SECRET) == PDD_SIGN
    assert pdd_sign({**PDD_PARAMS, "sign": PDD_SIGN}, PDD_SECRET) == PDD_SIGN


def test_pdd_accepts_int_values_as_decimal() -> None:
    ints: dict[str, ParamValue] = {**PDD_PARAMS, "client_id": 1, "page": 1, "page_size": 10, "timestamp": 1480411125}
    assert pdd_sign(ints, PDD_SECRET) == PDD_SIGN


def test_jd_vector() -> None:
    assert jd_sign(JD_PARAMS, JD_SECRET) == JD_SIGN
    assert jd_sign({**JD_PARAMS, "sign": "OLD"}, JD_SECRET) == JD_SIGN


def test_jd_param_json_reproduces_the_official_string() -> None:
    business = {
        "order_state": "WAIT_SELLER_STOCK_OUT",
        "page_size": "200",
        "start_date": None,
        "page": "1",
        "optional_fields": None,
        "end_date": None,
    }
    assert jd_param_json(business) == JD_PARAM_JSON
    assert jd_sign({**JD_PARAMS, "360buy_param_json": jd_param_json(business)}, JD_SECRET) == JD_SIGN


@pytest.mark.parametrize("sign", [pdd_sign, jd_sign], ids=["pdd", "jd"])
def test_jd_pdd_sign_what_is_sent_including_empty_values(sign: Signer) -> None:
    # Spec: JD/PDD sign every param sent except `sign`, so an empty value still contributes its key;
    # None means "not sent" and contributes nothing.
    assert sign({"a": "1", "b": ""}, "s") != sign({"a": "1"}, "s")
    assert sign({"a": "1", "b": None}, "s") == sign({"a": "1"}, "s")


@pytest.mark.parametrize("sign", [pdd_sign, jd_sign], ids=["pdd", "jd"])
@pytest.mark.parametrize("value", [b"file", True], ids=["bytes", "bool"])
def test_jd_pdd_refuse_unsignable_values(sign: Signer, value: ParamValue) -> None:
    with pytest.raises(TypeError):
        sign({"a": value}, "s")


def test_top_refuses_bool() -> None:
    with pytest.raises(TypeError, match="bool"):
        top_sign({"is_new": True}, "s")


def test_sort_is_by_key_in_ascii_order() -> None:
    # Upper case sorts before lower case and "_" (0x5F) before lower-case letters.
    params: dict[str, ParamValue] = {"b": "2", "a_b": "3", "B": "1", "ab": "4"}
    expected = hashlib.md5(b"sB1a_b3ab4b2s").hexdigest().upper()
    assert top_sign(params, "s") == pdd_sign(params, "s") == jd_sign(params, "s") == expected


@pytest.mark.parametrize(
    ("expected", "given", "ok"),
    [
        (TOP1_SIGN, TOP1_SIGN, True),
        (TOP1_SIGN, TOP1_SIGN.lower(), True),
        (TOP1_SIGN, TOP1_SIGN[:-1] + "9", False),
        (TOP1_SIGN, "", False),
        (TOP1_SIGN, TOP1_SIGN + "0", False),
        (TOP1_SIGN, "签名", False),
    ],
    ids=["same", "lowercase", "one digit off", "empty", "longer", "non-ASCII"],
)
def test_verify_sign(expected: str, given: str, ok: bool) -> None:
    assert verify_sign(expected, given) is ok


# ===== signed webhook ===================================================================================

SECRET = "whsec_测试"
BODY = '{"event":"message","text":"你好"}'.encode()
NOW = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
SIG = webhook_signature(SECRET, TS, BODY)


def test_webhook_signature_format() -> None:
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert expected == SIG
    assert len(SIG) == 64 and SIG.islower()
    assert webhook_signature(SECRET, int(TS), BODY) == SIG
    assert webhook_signature(SECRET.encode(), TS, BODY) == SIG


def test_webhook_signature_known_answer() -> None:
    # Computed independently: printf '1714550400.{"id":"m1","text":"hi"}' | openssl dgst -sha256 -hmac secret
    expected = "cf37131845fdfd0dc0f910e4cb3b258000594ef03d48d5b395a946dea1db8206"
    assert webhook_signature("secret", 1714550400, b'{"id":"m1","text":"hi"}') == expected


@pytest.mark.parametrize(
    ("timestamp", "signature", "now"),
    [
        pytest.param(TS, SIG, NOW, id="exact"),
        pytest.param(TS, SIG.upper(), NOW, id="uppercase hex"),
        pytest.param(TS, SIG, NOW + timedelta(seconds=300), id="edge of the window, past"),
        pytest.param(TS, SIG, NOW - timedelta(seconds=300), id="edge of the window, future"),
        pytest.param(TS, SIG, NOW.astimezone(timezone(timedelta(hours=8))), id="now in GMT+8"),
    ],
)
def test_webhook_accepts(timestamp: str, signature: str, now: datetime) -> None:
    check_webhook(SECRET, timestamp, signature, BODY, now)


def _sig(ts: str, body: bytes = BODY, secret: str = SECRET) -> str:
    return webhook_signature(secret, ts, body)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "reason"),
    [
        pytest.param(None, SIG, BODY, NOW, "missing_timestamp", id="no timestamp header"),
        pytest.param("", SIG, BODY, NOW, "missing_timestamp", id="empty timestamp"),
        pytest.param("abc", SIG, BODY, NOW, "bad_timestamp", id="letters"),
        pytest.param("-" + TS, SIG, BODY, NOW, "bad_timestamp", id="negative"),
        pytest.param(TS + ".5", SIG, BODY, NOW, "bad_timestamp", id="fractional"),
        pytest.param(" " + TS, SIG, BODY, NOW, "bad_timestamp", id="leading space"),
        pytest.param("١٧١٤٥٥٠٤٠٠", SIG, BODY, NOW, "bad_timestamp", id="non-ASCII digits"),
        pytest.param(TS + "000", SIG, BODY, NOW, "bad_timestamp", id="milliseconds"),
        pytest.param(TS, None, BODY, NOW, "missing_signature", id="no signature header"),
        pytest.param(TS, "", BODY, NOW, "missing_signature", id="empty signature"),
        pytest.param(TS, SIG[:-1], BODY, NOW, "bad_signature", id="short signature"),
        pytest.param(TS, SIG[:-1] + ("0" if SIG[-1] != "0" else "1"), BODY, NOW, "bad_signature", id="one digit off"),
        pytest.param(TS, "sha256=" + SIG, BODY, NOW, "bad_signature", id="prefixed"),
        pytest.param(TS, "签" * 64, BODY, NOW, "bad_signature", id="non-ASCII signature"),
        pytest.param(TS, SIG, BODY + b" ", NOW, "bad_signature", id="body changed"),
        pytest.param(TS, _sig(TS, secret="other"), BODY, NOW, "bad_signature", id="other secret"),
        pytest.param(str(int(TS) + 1), SIG, BODY, NOW, "bad_signature", id="timestamp changed"),
        pytest.param("0" + TS, SIG, BODY, NOW, "bad_signature", id="timestamp re-spelled"),
        pytest.param(TS, SIG, BODY, NOW + timedelta(seconds=301), "expired", id="expired"),
        pytest.param("1", _sig("1"), BODY, NOW, "expired", id="epoch"),
        pytest.param(TS, SIG, BODY, NOW - timedelta(seconds=301), "future", id="future"),
        pytest.param("99999999999", _sig("99999999999"), BODY, NOW, "future", id="far future"),
    ],
)
def test_webhook_rejects(timestamp: str | None, signature: str | None, body: bytes, now: datetime, reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        check_webhook(SECRET, timestamp, signature, body, now)
    assert info.value.reason == reason
    assert isinstance(info.value, VerificationError) and info.value.status == 401


def test_webhook_custom_window() -> None:
    check_webhook(SECRET, TS, SIG, BODY, NOW + timedelta(seconds=30), window_s=30)
    with pytest.raises(SignatureError, match="expired"):
        check_webhook(SECRET, TS, SIG, BODY, NOW + timedelta(seconds=31), window_s=30)


def test_webhook_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_webhook(SECRET, TS, SIG, BODY, NOW.replace(tzinfo=None))
