"""Masking of natural persons' personal data for public output: one function for text, :func:`mask_text`,
and :func:`mask` for a whole payload. Its cases are in ``tests/supervision/data/masking_corpus.yaml``.

The text is read in its NFKC form (full-width digits, ``＋``, ``＠``, ``：`` and ideographic spaces count as
their ASCII forms); the parts that are masked are written in that form, everything else keeps its
original characters. Masking is idempotent: masking masked text changes nothing.

What is masked, and what stays:

1. **E-mail addresses**: the first character of the local part stays, ``zhang.san@example.com`` →
   ``z***@example.com``.
2. **Mobile numbers**: 11 digits ``1[3-9]…``, with or without ``+86``, ``0086``, ``86`` or ``(+86)`` in
   front, written whole or in 3-4-4 groups separated by a space, a hyphen or a dot: the prefix, the first
   3 and the last 4 digits stay, ``138****5678``; grouped numbers become ``138-****-5678``.
3. **ID-card numbers**: 18 characters (17 digits and a digit, ``X`` or ``x``) or 15 digits (old cards: a
   plausible birth date ``YYMMDD`` in digits 7-12), spaces or hyphens allowed between the digits: the first
   6 and the last 4 (15 digits: 3) stay, ``410102********1234``. A valid unified social credit code
   (:func:`scoring.uscc.is_valid_uscc`) without a plausible birth date in digits 7-14 is an entity's code:
   public, it stays.
4. **Bank-card numbers**: 16 to 19 digits (grouped or not) that are not one of the above: the first and
   the last 4 stay, ``6222***********0123``.
5. **Landlines**: an area code (``0`` and 2-3 digits, in brackets or not; or ``+86`` and the code without
   its ``0``) and a 7-8 digit number: the area code and the last 4 digits stay, ``0371-****3456``; a bare 7-8
   digit number right after a phone label (电话, 座机, 固话, 传真, Tel, Fax, Phone): the last 4 stay.
6. **Instant-messaging ids** after ``QQ``, ``微信``, ``WeChat``: the first character stays.
7. **Home addresses** after 住址, 家庭住址, 现住址, 家住, 户籍地, 居住地: the first 6 characters stay (the
   city and district; at most half of the address), the rest up to the next punctuation becomes ``****``.
8. **Names of natural persons after a person label** (:data:`PERSON_LABELS`: 法定代表人, 法人代表, 负责人,
   联系人, 当事人, 经营者, 投诉人, 举报人, 申请人, 代理人, 姓名, …) and an optional separator (``:``, 为, 是,
   系, a short bracketed note). The rule: read the run of Chinese characters after the label (it ends at
   the first other character); the name is that run up to the first word that usually follows a name
   (:data:`AFTER_NAME`: 身份证, 电话, 经营, 的, 等, …, looked for from the run's third character on).

   - A name of 4 or more characters ending in an organisation word (公司, 店, 超市, 合作社, …, see
     :data:`ORGANISATION_ENDINGS`) is an entity: public, it stays (``当事人某某餐饮有限公司``).
   - A run that starts with a function word (应, 对, 在, 不, 可, 须, …: ``当事人应当…``) is not a name.
   - A name of 2 to 5 characters keeps its first character, and from 3 characters its last one:
     ``张*``, ``张*丰``, ``欧**娜``; the middle dot of a transliterated name stays (``阿**·**曼``).
   - A longer run whose end cannot be told keeps its first character and masks the next two
     (``当事人张三李四王五赵六`` → ``当事人张**四王五赵六``): a name is 2 or 3 characters long in most cases.
   - Names listed after the first one with ``、``, 和, 与 or 及 are masked the same way.

   A name with no label in front of it is not recognised (``张三在店内`` stays): the processes put names
   under personal keys (below), and free text that names a person should use a label.

:func:`mask` walks a payload: values under :data:`PERSONAL_KEYS` (names, phone numbers, ID numbers,
addresses of natural persons) are personal whatever they look like: an address under
:data:`ADDRESS_KEYS` as in rule 7, anything else by the rules above, then every run of
two or more Chinese characters as a name; a value in which nothing was found is masked whole (the first
and the last character stay, ``张*丰``, ``Z*******n``). Values under :data:`VERBATIM_KEYS` (the entity's
USCC, the draw's seed, population hash and public randomness value, needed to verify a draw) stay as they
are; every other string is free text (the rules above). Entity names and USCCs are public registry data and
stay. A payload nested deeper than :data:`MAX_DEPTH` is cut there (``…``).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from scoring.uscc import is_valid_uscc

MAX_DEPTH = 32
ELLIPSIS = "…"

#: Keys whose values are personal data of natural persons (masked wherever they appear in a payload).
PERSONAL_KEYS = frozenset({
    "legal_representative", "legal_rep", "person_name", "contact", "contact_name", "recipient", "name_of_person",
    "phone", "mobile", "telephone", "id_number", "id_card", "identity_number", "home_address", "email",
    "reporter", "complainant", "handlers", "investigators", "presiding_officer",
    "person", "persons", "natural_person", "operator_name", "owner_name", "principal", "person_in_charge",
    "legal_person", "agent", "applicant", "party_name", "mobile_phone", "phone_number", "cellphone", "tel",
    "id_no", "id_card_number", "identity_card", "citizen_id", "address_of_person", "contact_phone", "fax",
    "wechat", "qq", "bank_account", "bank_card",
})
#: Personal keys holding a natural person's address (masked as addresses are, rule 7).
ADDRESS_KEYS = frozenset({"home_address", "address_of_person"})
#: Keys whose values stay exactly as they are: public codes and the inputs that verify a draw.
VERBATIM_KEYS = frozenset({"uscc", "seed", "population_hash", "public_value", "algorithm"})

#: Labels after which a natural person's name is written (longest first when matched).
PERSON_LABELS = ("法定代表人", "法人代表", "负责人", "联系人", "当事人", "经营者", "投诉人", "举报人", "被申请人",
                 "申请人", "委托代理人", "代理人", "姓名", "户主", "业主", "店主", "监护人", "受害人", "证人",
                 "签收人", "收件人", "实际控制人", "股东", "个体户")
#: Words that usually follow a name: the name ends before them.
AFTER_NAME = ("公民身份", "身份证", "证件", "电话", "手机", "联系", "住址", "住所", "家住", "户籍", "出生", "年龄",
              "性别", "男", "女", "岁", "系", "的", "于", "在", "经营", "负责", "称", "等", "同志", "先生", "女士",
              "已", "未", "因", "拒", "对", "承认", "表示", "为", "是", "和", "与", "及", "向", "将", "签字", "签收",
              "到场", "陈述", "申辩", "持有", "现场", "本人", "涉嫌", "违反", "无法", "提出", "提供", "说明", "确认",
              "同意", "接受", "当场", "主动", "自愿", "名下", "所有", "开办", "从事", "签订")
#: Words a run after a label starts with when it is not a name (当事人应当…, 负责人对…).
FUNCTION_WORDS = ("应", "对", "在", "不", "可", "须", "需", "拒", "因", "将", "按", "依", "如", "若", "均", "并",
                  "自", "所", "等", "要", "无", "逾", "被", "违", "签", "称", "未", "已", "的", "是", "为", "及",
                  "名", "信息", "身份", "电话", "本人", "一", "二", "两", "多", "各", "该", "其", "某某")
#: Endings of organisation names (entities are public).
ORGANISATION_ENDINGS = ("公司", "集团", "企业", "商行", "商店", "超市", "商场", "市场", "餐馆", "餐厅", "饭店", "酒店",
                        "酒楼", "宾馆", "旅馆", "药店", "药房", "诊所", "医院", "门诊", "卫生室", "厂", "店", "部",
                        "中心", "合作社", "工作室", "事务所", "协会", "学校", "幼儿园", "馆", "社", "行", "坊", "场",
                        "站", "所", "院", "铺", "楼", "城", "庄", "园", "处", "局", "委员会", "联合社", "经营部")
PHONE_LABELS = ("联系电话", "办公电话", "电话", "座机", "固话", "传真", "tel", "fax", "phone")
IM_LABELS = ("微信号", "微信", "wechat", "weixin", "qq")
ADDRESS_LABELS = ("家庭住址", "现住址", "住址", "家住", "户籍地址", "户籍所在地", "户籍地", "居住地")

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_DOTS = "·\u30fb\u2022"
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_SEP = r"(?:\s?[\-.]?\s?)"

_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9._%+\-]+)@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z+])(?P<cc>(?:\+|00)?86\s?[\-.]?\s?|\(\+?86\)\s?)?"
                        rf"(?P<a>1[3-9]\d)(?P<s1>{_SEP})(?P<b>\d{{4}})(?P<s2>{_SEP})(?P<c>\d{{4}}){_NOT_ALNUM_AFTER}")
_ID18_RE = re.compile(rf"{_NOT_ALNUM_BEFORE}[1-9](?:[ \-]?\d){{16}}[ \-]?[\dXx]{_NOT_ALNUM_AFTER}")
_ID15_RE = re.compile(rf"{_NOT_ALNUM_BEFORE}[1-9](?:[ \-]?\d){{14}}{_NOT_ALNUM_AFTER}")
_CARD_RE = re.compile(rf"{_NOT_ALNUM_BEFORE}\d(?:[ \-]?\d){{15,18}}{_NOT_ALNUM_AFTER}")
_LANDLINE_RE = re.compile(r"(?<![0-9A-Za-z+])(?P<area>\(0\d{2,3}\)|0\d{2,3}|(?:\+|00)86\s?-?\s?(?:\(0\))?[1-9]\d{1,2})"
                          rf"(?P<s>{_SEP})(?P<n1>\d{{3,4}})[ \-]?(?P<n2>\d{{4}}){_NOT_ALNUM_AFTER}")
_LABELLED_PHONE_RE = re.compile(r"(?i)(?<![A-Za-z])(?:" + "|".join(PHONE_LABELS) + r")\s?(?:号码|号)?\s?[:：]?\s?"
                                rf"(?P<num>\d{{3,4}}[ \-]?\d{{4}}){_NOT_ALNUM_AFTER}")
_IM_RE = re.compile(r"(?i)(?<![A-Za-z])(?:" + "|".join(IM_LABELS) + r")\s?号?\s?[:：]?\s?(?P<id>[A-Za-z0-9_\-]{5,20})"
                    r"(?![A-Za-z0-9_\-*])")
_ADDRESS_RE = re.compile("(?:" + "|".join(ADDRESS_LABELS) + r")\s?(?:[:：]|为|是|在)?\s?"
                         r"(?P<addr>[^\s,.;:!?()\[\]，。；：、！？（）【】*]{2,80})(?P<next>\*?)")
_NAME_LABEL_RE = re.compile("(?:" + "|".join(sorted(PERSON_LABELS, key=len, reverse=True)) + ")"
                            r"\s?(?:\([^()]{0,10}\))?\s?(?::|为|是|系)?\s?"
                            rf"(?P<run>[{_HAN}{_DOTS}]+)(?P<next>\*?)")
_HAN_RUN_RE = re.compile(rf"[{_HAN}][{_HAN}{_DOTS}]+")
_LIST_JOINERS = ("、", "和", "与", "及")
_BIRTH_18 = re.compile(r"^\d{6}(?:18|19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_BIRTH_15 = re.compile(r"^\d{6}\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")

#: (start, end, replacement) in the normalised text; ``None``: keep the original (a public code)
Span = tuple[int, int, str | None]


def _digits(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)


def _email(norm: str) -> Iterator[Span]:
    for m in _EMAIL_RE.finditer(norm):
        yield m.start(), m.end(), f"{m.group(1)[0]}***@{m.group(2)}"


def _mobile(norm: str) -> Iterator[Span]:
    for m in _MOBILE_RE.finditer(norm):
        cc = m.group("cc") or ""
        middle = "-****-" if m.group("s1") or m.group("s2") else "****"
        yield m.start(), m.end(), f"{cc}{m.group('a')}{middle}{m.group('c')}"


def _is_entity_code(code: str) -> bool:
    """A valid USCC that cannot be an ID-card number (no plausible birth date): many USCCs are 17 digits
    and a digit or X, the shape of an ID-card number."""
    return is_valid_uscc(code) and not _BIRTH_18.match(code)


def _id18(norm: str) -> Iterator[Span]:
    for m in _ID18_RE.finditer(norm):
        code = _digits(m.group(0))
        yield m.start(), m.end(), None if _is_entity_code(code) else code[:6] + "*" * 8 + code[-4:]


def _id15(norm: str) -> Iterator[Span]:
    for m in _ID15_RE.finditer(norm):
        code = _digits(m.group(0))
        if _BIRTH_15.match(code):
            yield m.start(), m.end(), code[:6] + "*" * 6 + code[-3:]


def _card(norm: str) -> Iterator[Span]:
    for m in _CARD_RE.finditer(norm):
        digits = _digits(m.group(0))
        yield m.start(), m.end(), digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def _landline(norm: str) -> Iterator[Span]:
    for m in _LANDLINE_RE.finditer(norm):
        yield m.start(), m.end(), f"{m.group('area')}{m.group('s')}****{m.group('n2')}"


def _labelled_phone(norm: str) -> Iterator[Span]:
    for m in _LABELLED_PHONE_RE.finditer(norm):
        digits = _digits(m.group("num"))
        yield m.start("num"), m.end("num"), "*" * (len(digits) - 4) + digits[-4:]


def _im(norm: str) -> Iterator[Span]:
    for m in _IM_RE.finditer(norm):
        yield m.start("id"), m.end("id"), m.group("id")[0] + "***"


def mask_address(addr: str) -> str:
    """At most the first 6 characters (and at most half of them) stay: 郑州市金水区****."""
    return addr if addr.endswith("****") else addr[:min(6, len(addr) // 2)] + "****"


def _address(norm: str) -> Iterator[Span]:
    for m in _ADDRESS_RE.finditer(norm):
        if not m.group("next"):  # followed by * : masked already
            yield m.start("addr"), m.end("addr"), mask_address(m.group("addr"))


def mask_name(name: str) -> str:
    """A name keeps its first character and, from 3 characters, its last: 张* / 张*丰 / 欧**娜; middle dots
    stay. Anything else (Latin letters) the same way."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "".join(c if c in _DOTS else "*" for c in name[1:-1]) + name[-1]


def _name_end(run: str) -> int:
    """Where the name at the start of ``run`` ends (0: the run is not a name)."""
    if run.startswith(FUNCTION_WORDS) or run[0] in _DOTS:
        return 0
    end = len(run)
    for word in AFTER_NAME:
        at = run.find(word, 2)
        if at != -1:
            end = min(end, at)
    name = run[:end]
    if len(name) < 2 or (len(name) >= 4 and name.endswith(ORGANISATION_ENDINGS)) or "公司" in name:
        return 0
    return end


def _names(norm: str) -> Iterator[Span]:
    for m in _NAME_LABEL_RE.finditer(norm):
        if m.group("next"):  # 张* : masked already
            continue
        start, run = m.start("run"), m.group("run")
        while run:
            end = _name_end(run)
            if not end:
                break
            if end > 5 and not any(c in _DOTS for c in run[:end]):  # the name's end is not known
                yield start, start + 3, run[0] + "**"
            else:
                yield start, start + end, mask_name(run[:end])
            rest = run[end:]
            joiner = next((j for j in _LIST_JOINERS if rest.startswith(j)), None)
            if joiner is None:
                after = start + len(run)
                if end == len(run) and norm[after:after + 1] == "、":  # 张三、李四
                    nxt = re.match(rf"[{_HAN}{_DOTS}]+", norm[after + 1:])
                    if nxt and not norm[after + 1 + nxt.end():after + 2 + nxt.end()] == "*":
                        start, run = after + 1, nxt.group(0)
                        continue
                break
            start, run = start + end + len(joiner), rest[len(joiner):]


#: the finders in order of precedence (where two find overlapping text, the earlier start wins, then this order)
FINDERS: tuple[Callable[[str], Iterator[Span]], ...] = (
    _email, _im, _mobile, _id18, _id15, _landline, _card, _labelled_phone, _address, _names)


def _normalised(text: str) -> tuple[str, list[int]]:
    """NFKC, character by character, and for each character of the result the index of its source."""
    parts: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        n = ch if ch.isascii() else unicodedata.normalize("NFKC", ch)
        parts.append(n)
        origin.extend([i] * len(n))
    return "".join(parts), origin


def _spans(norm: str) -> list[Span]:
    found = []
    for rank, finder in enumerate(FINDERS):
        found.extend((s, rank, e, r) for s, e, r in finder(norm) if e > s)
    chosen: list[Span] = []
    end = 0
    for s, _rank, e, r in sorted(found, key=lambda f: (f[0], f[1])):
        if s >= end:
            chosen.append((s, e, r))
            end = e
    return chosen


def mask_text(text: str) -> str:
    """Free text with the personal data in it masked (the rules of this module's docstring)."""
    if not text:
        return text
    norm, origin = _normalised(text)
    out: list[str] = []
    pos = 0
    for s, e, replacement in _spans(norm):
        start, end = origin[s], origin[e - 1] + 1
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(text[start:end] if replacement is None else replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mask_personal(value: Any) -> str:
    """A value that is personal data whatever it looks like (a name, a number, an address)."""
    text = str(value)
    masked = mask_text(text)
    masked = _HAN_RUN_RE.sub(lambda m: mask_name(m.group(0)), masked)
    if masked == text and "*" not in text:
        return mask_name(text)
    return masked


def mask(value: Any, key: str | None = None) -> Any:
    """A payload with personal data masked: values under :data:`PERSONAL_KEYS` whole, every other string as
    free text (:func:`mask_text`); :data:`VERBATIM_KEYS` stay; nesting deeper than :data:`MAX_DEPTH` → ``…``."""
    return _mask(value, key, 0)


def _mask(value: Any, key: str | None, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return ELLIPSIS
    if isinstance(value, dict):
        return {k: _mask(v, k if isinstance(k, str) else None, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v, key, depth + 1) for v in value]
    lowered = key.lower() if key is not None else None
    if lowered in VERBATIM_KEYS:
        return value
    if lowered in PERSONAL_KEYS:
        if value is None or isinstance(value, bool):
            return value
        return mask_address(str(value)) if lowered in ADDRESS_KEYS else mask_personal(value)
    return mask_text(value) if isinstance(value, str) else value
