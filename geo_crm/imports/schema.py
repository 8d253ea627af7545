"""What each import kind accepts: fields, types, requirements, and the header
aliases (English, Finnish, Swedish, Chinese) used for automatic column mapping."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from geo_crm.models.enums import (CREDIT_RATINGS, CUSTOMER_KINDS, CUSTOMER_LEVELS, CUSTOMER_STATUSES, GENDERS,
                                  PARTNER_TYPES)


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"            # str, int, decimal, bool, enum, email, lon, lat, x, y
    required: bool = False
    max_len: int | None = None
    choices: tuple[str, ...] | None = None


def _f(name, type="str", required=False, max_len=None, choices=None):
    return Field(name, type, required, max_len, choices)


LOCATION = [_f("lon", "lon"), _f("lat", "lat"), _f("x", "x"), _f("y", "y")]
ADDRESS = [_f("address", max_len=300), _f("postcode", max_len=16), _f("city", max_len=100),
           _f("phone", max_len=50), _f("email", "email", max_len=200)]

KINDS: dict[str, list[Field]] = {
    "customers": [
        _f("code", required=True, max_len=32), _f("name", required=True, max_len=200),
        _f("kind", "enum", choices=CUSTOMER_KINDS), _f("industry", max_len=64),
        _f("level", "enum", choices=CUSTOMER_LEVELS), _f("status", "enum", choices=CUSTOMER_STATUSES),
        _f("credit_rating", "enum", choices=CREDIT_RATINGS), _f("employees", "int"),
        _f("annual_revenue_eur", "decimal"), *ADDRESS, _f("country", max_len=2),
        _f("website", max_len=200), _f("notes"), _f("owner", max_len=64), *LOCATION],
    "contacts": [
        _f("customer_code", required=True, max_len=32), _f("name", required=True, max_len=200),
        _f("gender", "enum", choices=GENDERS), _f("title", max_len=100), _f("office_phone", max_len=50),
        _f("mobile_phone", max_len=50), _f("email", "email", max_len=200), _f("is_primary", "bool"),
        _f("notes")],
    "branches": [
        _f("code", required=True, max_len=32), _f("name", required=True, max_len=200), *ADDRESS,
        _f("is_depot", "bool"), *LOCATION],
    "partners": [
        _f("code", required=True, max_len=32), _f("name", required=True, max_len=200),
        _f("partner_type", "enum", required=True, choices=PARTNER_TYPES), _f("credit_level", max_len=8),
        *ADDRESS, _f("commission_pct", "decimal"), _f("notes"), *LOCATION],
}
# kinds whose records must have a location
LOCATION_REQUIRED = {"branches", "partners"}

ALIASES: dict[str, list[str]] = {
    "code": ["code", "customer code", "customer id", "customer no", "customer number", "id", "asiakasnumero",
             "asiakasnro", "asiakastunnus", "tunnus", "koodi", "kundnummer", "编号", "代码", "客户编号", "编码",
             "branch code", "partner code", "toimipiste", "kumppanikoodi"],
    "customer_code": ["customer code", "customer", "customer id", "asiakasnumero", "asiakas", "asiakastunnus",
                      "客户编号", "客户代码", "客户"],
    "name": ["name", "company", "company name", "customer name", "contact name", "nimi", "yritys", "yrityksen nimi",
             "asiakas", "namn", "名称", "名字", "姓名", "公司", "客户名称", "联系人"],
    "kind": ["kind", "type", "customer type", "tyyppi", "asiakastyyppi", "类型", "客户类型"],
    "industry": ["industry", "sector", "toimiala", "ala", "bransch", "行业"],
    "level": ["level", "tier", "customer level", "taso", "asiakastaso", "nivå", "级别", "等级", "客户级别"],
    "status": ["status", "state", "tila", "状态"],
    "credit_rating": ["credit rating", "credit", "luottoluokitus", "信用等级", "信用"],
    "employees": ["employees", "staff", "henkilöstö", "työntekijät", "anställda", "员工", "员工人数"],
    "annual_revenue_eur": ["annual revenue", "revenue", "annual revenue eur", "liikevaihto", "omsättning",
                           "营业额", "年收入"],
    "address": ["address", "street address", "street", "osoite", "katuosoite", "lähiosoite", "adress",
                "gatuadress", "地址", "详细地址"],
    "postcode": ["postcode", "postal code", "post code", "zip", "zip code", "postinumero", "postnummer", "邮编",
                 "邮政编码"],
    "city": ["city", "town", "municipality", "kaupunki", "kunta", "postitoimipaikka", "paikkakunta", "stad",
             "ort", "城市", "市"],
    "country": ["country", "country code", "maa", "land", "国家"],
    "phone": ["phone", "telephone", "tel", "puhelin", "puhelinnumero", "telefon", "电话", "联系电话"],
    "office_phone": ["office phone", "work phone", "phone", "puhelin", "työpuhelin", "办公电话", "电话"],
    "mobile_phone": ["mobile", "mobile phone", "cell", "matkapuhelin", "kännykkä", "gsm", "手机", "移动电话"],
    "email": ["email", "e-mail", "mail", "sähköposti", "s-posti", "e-post", "邮箱", "电子邮件", "电子邮箱"],
    "website": ["website", "web", "url", "www", "kotisivu", "verkkosivu", "网站"],
    "notes": ["notes", "note", "comment", "comments", "muistiinpanot", "huomautukset", "lisätiedot", "备注"],
    "owner": ["owner", "account manager", "owner username", "vastuuhenkilö", "myyjä", "负责人", "客户经理"],
    "lon": ["lon", "lng", "long", "longitude", "pituus", "pituusaste", "longitud", "经度"],
    "lat": ["lat", "latitude", "leveys", "leveysaste", "latitud", "纬度"],
    "x": ["x", "easting", "itä", "e"],
    "y": ["y", "northing", "pohjoinen", "n"],
    "gender": ["gender", "sex", "sukupuoli", "kön", "性别"],
    "title": ["title", "job title", "position", "role", "titteli", "tehtävä", "asema", "职位", "职务"],
    "is_primary": ["primary", "is primary", "main contact", "pääyhteyshenkilö", "ensisijainen", "主要联系人"],
    "is_depot": ["depot", "is depot", "varasto", "仓库"],
    "partner_type": ["partner type", "type", "kumppanityyppi", "tyyppi", "合作伙伴类型", "类型"],
    "credit_level": ["credit level", "credit", "luottotaso", "信用等级"],
    "commission_pct": ["commission", "commission pct", "commission %", "provisio", "provisio %", "佣金",
                       "佣金比例"],
}

# value synonyms for enums (lower-case): Finnish and Chinese
ENUM_SYNONYMS = {
    "level": {"avain": "key", "avainasiakas": "key", "merkittävä": "major", "suuri": "major", "tavallinen": "ordinary",
              "normaali": "ordinary", "pieni": "small", "重点": "key", "关键": "key", "重要": "major", "普通": "ordinary",
              "小": "small", "小型": "small"},
    "status": {"aktiivinen": "active", "prospekti": "prospect", "potentiaalinen": "prospect", "passiivinen": "dormant",
               "lepäävä": "dormant", "menetetty": "lost", "活跃": "active", "潜在": "prospect", "休眠": "dormant",
               "流失": "lost"},
    "kind": {"yritys": "company", "henkilö": "person", "公司": "company", "企业": "company", "个人": "person"},
    "gender": {"nainen": "female", "mies": "male", "f": "female", "m": "male", "女": "female", "男": "male",
               "muu": "other", "其他": "other"},
}


def header_key(h: str) -> str:
    """Normal form of a column header: lower, NFC, '_'/'-'/'.' as spaces, no units."""
    s = unicodedata.normalize("NFC", str(h or "")).strip().lower()
    s = re.sub(r"\((.*?)\)|\[(.*?)\]", "", s)
    s = re.sub(r"[_\-./]+", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def auto_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """{field: source header} for the headers that match a known alias. An exact field
    name wins over an alias; each header maps to at most one field."""
    fields = [f.name for f in KINDS[kind]]
    keys = {header_key(h): h for h in headers}
    out: dict[str, str] = {}
    used: set[str] = set()
    for f in fields:                      # exact field names first
        k = header_key(f)
        if k in keys:
            out[f] = keys[k]
            used.add(k)
    for f in fields:
        if f in out:
            continue
        for alias in ALIASES.get(f, []):
            k = header_key(alias)
            if k in keys and k not in used:
                out[f] = keys[k]
                used.add(k)
                break
    return out
