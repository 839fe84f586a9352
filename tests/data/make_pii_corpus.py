"""Writes tests/data/pii_corpus.jsonl: made-up PII embedded in marketplace listings and chats.

Every value is invented here (seeded, so the file is reproducible): e-mail addresses,
phones in Russian and international formats, payment cards (Visa, Mastercard, Mir;
Luhn-valid), IBANs (mod-97 valid), Russian passports, INNs (check digits valid),
marketplace order ids and IP addresses. Each line: ``{"id", "kind", "text", "values":
[{"entity", "value"}]}``. Run: ``python tests/data/make_pii_corpus.py``.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

OUT = Path(__file__).with_name("pii_corpus.jsonl")
rng = random.Random(20261202)

FIRST = ["anna", "ivan", "olga", "petr", "maria", "sergey", "elena", "dmitry", "john", "kate", "alex", "nina"]
LAST = ["ivanova", "petrov", "smirnova", "kuznetsov", "popova", "sokolov", "lebedeva", "smith", "brown", "novikov"]
DOMAINS = ["gmail.com", "yandex.ru", "mail.ru", "example.org", "shop-partner.com", "company.co.uk", "inbox.ru", "bk.ru"]


def digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def email() -> str:
    sep = rng.choice([".", "_", "", "-"])
    number = rng.randint(1, 999) if rng.random() < 0.5 else ""
    return f"{rng.choice(FIRST)}{sep}{rng.choice(LAST)}{number}@{rng.choice(DOMAINS)}"


def ru_phone() -> str:
    code = f"9{digits(2)}" if rng.random() < 0.8 else rng.choice(["495", "499", "812", "343", "383"])
    a, b, c = digits(3), digits(2), digits(2)
    return rng.choice(
        [
            f"+7 ({code}) {a}-{b}-{c}",
            f"8 ({code}) {a}-{b}-{c}",
            f"+7 {code} {a} {b} {c}",
            f"8 {code} {a} {b} {c}",
            f"8-{code}-{a}-{b}-{c}",
            f"+7{code}{a}{b}{c}",
            f"8{code}{a}{b}{c}",
            f"+7-{code}-{a}-{b}{c}",
        ]
    )


def intl_phone() -> str:
    """A number in a range an operator could really assign (libphonenumber's metadata says which):
    a number nobody could have is not a phone number."""
    import phonenumbers

    while True:
        shown = rng.choice(
            [
                f"+44 20 7{digits(3)} {digits(4)}",
                f"+49 30 {digits(8)}",
                f"+1 (415) 5{rng.randint(10, 99)}-{digits(4)}",
                f"+33 6 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
            ]
        )
        if phonenumbers.is_valid_number(phonenumbers.parse(shown)):
            return shown


def luhn_complete(prefix: str, length: int = 16) -> str:
    body = prefix + digits(length - len(prefix) - 1)
    for check in string.digits:
        candidate = body + check
        total = 0
        for i, d in enumerate(int(c) for c in reversed(candidate)):
            total += d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def card() -> str:
    number = luhn_complete(rng.choice(["4276", "4279", "5469", "5536", "2200", "2202", "4111"]))
    sep = rng.choice([" ", "-", ""])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def iban() -> str:
    country, length = rng.choice([("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14), ("KZ", 16), ("ES", 20)])
    if country == "GB":
        bban = rng.choice(["NWBK", "BARC", "MIDL"]) + digits(14)
    elif country == "NL":
        bban = rng.choice(["ABNA", "INGB", "RABO"]) + digits(10)
    else:
        bban = digits(length)
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    check = f"{98 - number % 97:02d}"
    compact = country + check + bban
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if rng.random() < 0.5 else compact


def passport() -> tuple[str, str]:
    series, number = digits(4), digits(6)
    shown = rng.choice(
        [
            (f"серия {series[:2]} {series[2:]} номер {number}", f"{series[:2]} {series[2:]} номер {number}"),
            (f"паспорт {series} {number}", f"{series} {number}"),
            (f"паспорт: {series[:2]} {series[2:]} {number}", f"{series[:2]} {series[2:]} {number}"),
            (f"passport {series}{number}", f"{series}{number}"),
            (f"{series[:2]} {series[2:]} {number}", f"{series[:2]} {series[2:]} {number}"),
        ]
    )
    return shown


def inn() -> str:
    def check(weights: list[int], values: list[int]) -> int:
        return sum(w * d for w, d in zip(weights, values, strict=False)) % 11 % 10

    if rng.random() < 0.5:
        base = [int(c) for c in digits(9)]
        return "".join(map(str, base + [check([2, 4, 10, 3, 5, 9, 4, 6, 8], base)]))
    base = [int(c) for c in digits(10)]
    base.append(check([7, 2, 4, 10, 3, 5, 9, 4, 6, 8], base))
    base.append(check([3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8], base))
    return "".join(map(str, base))


def order() -> tuple[str, str]:
    posting = f"{digits(8)}-{digits(4)}"
    suffix = rng.randint(1, 9)
    wb = f"WB-{digits(10)}"
    code = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(7)) + digits(1)
    return rng.choice(
        [
            (f"заказ № {posting}-{suffix}", f"{posting}-{suffix}"),
            (f"отправление {posting}", posting),
            (f"order {wb}", wb),
            (f"заказ {code}", code),
            (f"order #{code}", code),
            (f"номер заказа: {digits(9)}", None),
        ]
    )


def ip() -> str:
    if rng.random() < 0.2:
        return f"2001:db8:{rng.randint(1, 9999):x}:{rng.randint(1, 9999):x}::{rng.randint(1, 255):x}"
    first = rng.choice([85, 95, 178, 192, 10, 212])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def value(entity: str) -> tuple[str, str]:
    """(how it is written in the text, the value to look for)."""
    if entity == "EMAIL_ADDRESS":
        v = email()
        return v, v
    if entity == "PHONE_NUMBER":
        v = ru_phone() if rng.random() < 0.75 else intl_phone()
        return v, v
    if entity == "CREDIT_CARD":
        v = card()
        return v, v
    if entity == "IBAN_CODE":
        v = iban()
        return v, v
    if entity == "RU_PASSPORT":
        return passport()
    if entity == "RU_INN":
        v = inn()
        return f"ИНН {v}" if rng.random() < 0.6 else v, v
    if entity == "ORDER_ID":
        shown, v = order()
        if v is None:  # "номер заказа: 123456789": the digits after the words
            v = shown.split(": ")[1]
        return shown, v
    v = ip()
    return v, v


LISTINGS = [
    "Продаю кроссовки Nike Air Max 90, размер 42, цвет белый. Самовывоз, пишите {0}.",
    "Платье летнее, хлопок, размер M. Связь: {0}, оплата на карту {1}.",
    "iPhone 13 128GB, состояние отличное. Звоните {0} или пишите {1}.",
    "Kettle Bosch 1.7 L, barely used. Contact me at {0}; invoice to {1}.",
    "Детская коляска, 2 в 1. Продавец ИП Смирнова, {0}, тел. {1}.",
    "Leather jacket, size L, brown. Payment by IBAN {0}, questions to {1}.",
    "Набор посуды 12 предметов. Доставка по {0}, {1}.",
]
CHATS = [
    "Покупатель: Здравствуйте, мой {0} не пришёл. Телефон для связи {1}.",
    "Buyer: Hi, I paid with card {0} but the order {1} still says pending.",
    "Покупатель: Верните деньги на карту {0}, мой e-mail {1}.",
    "Customer: please call me back at {0}, my email is {1}. I logged in from {2}.",
    "Покупатель: для возврата мои данные — {0}, {1}.",
    "Support: we found {0}; the payment from IBAN {1} arrived. Your login IP was {2}.",
    "Клиент: я юрлицо, {0}, счёт на {1}, телефон бухгалтерии {2}.",
]
PLAN = {  # entity: how many values
    "EMAIL_ADDRESS": 80,
    "PHONE_NUMBER": 100,
    "CREDIT_CARD": 70,
    "IBAN_CODE": 50,
    "RU_PASSPORT": 50,
    "RU_INN": 60,
    "ORDER_ID": 45,
    "IP_ADDRESS": 28,
}


def main() -> None:
    pool = [entity for entity, n in PLAN.items() for _ in range(n)]
    rng.shuffle(pool)
    records, i = [], 0
    while pool:
        kind, templates = rng.choice([("listing", LISTINGS), ("chat", CHATS)])
        template = rng.choice(templates)
        slots = template.count("{")
        entities = [pool.pop() for _ in range(min(slots, len(pool)))]
        shown, values = [], []
        for entity in entities:
            text, v = value(entity)
            shown.append(text)
            values.append({"entity": entity, "value": v})
        shown += ["(нет)"] * (slots - len(shown))
        records.append({"id": f"p{i:03d}", "kind": kind, "text": template.format(*shown), "values": values})
        i += 1
    with OUT.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{sum(len(r['values']) for r in records)} values in {len(records)} texts -> {OUT}")


if __name__ == "__main__":
    main()
