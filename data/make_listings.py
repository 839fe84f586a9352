# ruff: noqa: E501  (the product and phrase tables read best one entry a line)
"""Write data/listings.jsonl: marketplace listings (Russian and English) with their expected fields.

Deterministic (seeded): ``python data/make_listings.py`` rewrites the same file byte for byte.
Each line is ``{"id", "kind", "lang", "text", "expected"}``; ``kind`` names the hard case the
listing exercises (see KINDS). The expected fields follow data/listing.schema.json:

- ``category``: one of CATEGORIES, inferred from the item (always set).
- ``brand``: the canonical (Latin) brand name; null when none is stated or the listing only
  compares to one ("like Nike", "как у Gucci", a replica).
- ``model``: the canonical model name, null when not stated.
- ``colour``: one canonical English colour word, null when not stated; when the listing corrects
  itself, the corrected colour.
- ``size``: a string, the first size the seller gives, with its system (``EU``/``US``/``RU``) when
  one is written, ranges as ``"42-44"``, jeans as ``"W32 L34"``; null for sizeless items.
- ``condition``: ``new`` or ``used``; null when not stated.
- ``price``: the asking price now (not the old or the delivery price), null when not stated.
- ``currency``: ISO code only when the text writes a currency (``₽``, ``руб``, ``$``...), else null.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 13
N_PER_KIND = 27
OUT = Path(__file__).with_name("listings.jsonl")

CATEGORIES = ["shoes", "clothing", "bags", "electronics", "home", "kids", "sports"]
KINDS = [
    "plain", "absent", "conflict", "size_notation", "price_currency",
    "typo", "emoji", "not_brand", "cyrillic_brand",
]  # fmt: skip

# (category, brand, models, English nouns, Russian nouns, size kind, price range)
PRODUCTS = [
    ("shoes", "Nike", ["Air Max 90", "Air Force 1", "Pegasus 39"], ["sneakers", "trainers"], ["кроссовки"], "shoe", (3000, 14000)),
    ("shoes", "Adidas", ["Superstar", "Stan Smith", "Ultraboost 22"], ["sneakers", "trainers"], ["кроссовки", "кеды"], "shoe", (2500, 12000)),
    ("shoes", "New Balance", ["574", "990v5"], ["sneakers"], ["кроссовки"], "shoe", (3500, 15000)),
    ("shoes", "Puma", ["Suede Classic", "RS-X"], ["sneakers"], ["кроссовки"], "shoe", (2000, 8000)),
    ("shoes", "Converse", ["Chuck Taylor All Star"], ["canvas shoes", "high tops"], ["кеды"], "shoe", (1500, 6000)),
    ("shoes", "Salomon", ["XT-6", "Speedcross 5"], ["trail shoes"], ["кроссовки", "ботинки"], "shoe", (5000, 16000)),
    ("clothing", "Levi's", ["501", "511"], ["jeans"], ["джинсы"], "jeans", (1500, 6000)),
    ("clothing", "The North Face", ["Nuptse 700"], ["puffer jacket", "down jacket"], ["пуховик", "куртка"], "letter", (7000, 25000)),
    ("clothing", "Zara", [None], ["dress", "coat", "blazer"], ["платье", "пальто", "пиджак"], "ru", (900, 5000)),
    ("clothing", "Uniqlo", ["Ultra Light Down"], ["light down jacket"], ["лёгкий пуховик"], "letter", (2000, 6000)),
    ("clothing", "Carhartt", ["Detroit Jacket"], ["work jacket"], ["куртка"], "letter", (4000, 12000)),
    ("clothing", "Columbia", [None], ["fleece", "rain jacket"], ["флиска", "ветровка"], "letter", (1500, 6000)),
    ("bags", "Michael Kors", ["Jet Set"], ["tote bag", "crossbody bag"], ["сумка"], None, (3000, 12000)),
    ("bags", "Furla", ["Metropolis"], ["bag"], ["сумка", "сумочка"], None, (5000, 15000)),
    ("bags", "Fjallraven", ["Kanken"], ["backpack"], ["рюкзак"], None, (2500, 7000)),
    ("electronics", "Apple", ["iPhone 13", "iPhone 14 Pro", "AirPods Pro 2", "MacBook Air M1"], ["phone", "phone", "earbuds", "laptop"], ["телефон", "телефон", "наушники", "ноутбук"], None, (9000, 70000)),
    ("electronics", "Samsung", ["Galaxy S22", "Galaxy Buds2"], ["phone", "earbuds"], ["смартфон", "наушники"], None, (5000, 40000)),
    ("electronics", "Xiaomi", ["Redmi Note 12", "Mi Band 7"], ["phone", "fitness band"], ["смартфон", "фитнес-браслет"], None, (1500, 15000)),
    ("electronics", "Sony", ["WH-1000XM4", "PlayStation 5"], ["headphones", "console"], ["наушники", "приставка"], None, (12000, 45000)),
    ("electronics", "JBL", ["Flip 6", "Charge 5"], ["speaker"], ["колонка"], None, (4000, 12000)),
    ("home", "Dyson", ["V11", "Supersonic"], ["vacuum", "hair dryer"], ["пылесос", "фен"], None, (15000, 40000)),
    ("home", "IKEA", ["Poang", "Billy"], ["armchair", "bookcase"], ["кресло", "стеллаж"], None, (1500, 8000)),
    ("home", "Tefal", [None], ["frying pan", "kettle"], ["сковорода", "чайник"], None, (800, 4000)),
    ("kids", "LEGO", ["Technic 42115", "City 60337"], ["set"], ["конструктор", "набор"], None, (2000, 20000)),
    ("kids", "Chicco", [None], ["stroller", "high chair"], ["коляска", "стульчик"], None, (3000, 15000)),
    ("sports", "Wilson", ["Pro Staff 97"], ["tennis racket"], ["ракетка"], None, (4000, 15000)),
    ("sports", "Garmin", ["Forerunner 255"], ["running watch"], ["часы для бега"], None, (12000, 28000)),
]  # fmt: skip

COLOURS = {
    "black": (["black"], ["чёрный", "черный", "чёрного цвета"]),
    "white": (["white"], ["белый", "белого цвета"]),
    "grey": (["grey", "gray"], ["серый", "серого цвета"]),
    "red": (["red"], ["красный", "красного цвета"]),
    "blue": (["blue"], ["синий", "синего цвета"]),
    "navy": (["navy", "dark blue"], ["тёмно-синий", "темно-синий"]),
    "green": (["green", "olive green"], ["зелёный", "зеленый"]),
    "beige": (["beige"], ["бежевый", "бежевого цвета"]),
    "brown": (["brown"], ["коричневый"]),
    "pink": (["pink"], ["розовый"]),
}
CONDITIONS = {
    "new": (["brand new", "new in box", "never used", "new, sealed", "new with tags"],
            ["состояние новое", "новое, в упаковке", "не пользовались, новое", "абсолютно новое", "новое с биркой"]),
    "used": (["used, good condition", "pre-owned", "gently used", "some signs of wear", "used for one season"],
             ["б/у", "состояние б/у, хорошее", "пользовались аккуратно", "есть потёртости, б/у", "б/у один сезон"]),
}  # fmt: skip
FILLERS = (
    ["Pickup only.", "Can ship.", "No trades.", "Smoke-free home.", "Offers welcome.", "Selling because I moved.",
     "Message me with questions.", "Original box included."],
    ["Самовывоз у метро.", "Отправлю доставкой.", "Торг уместен.", "Обмен не интересует.",
     "Причина продажи: не подошло.", "Пишите в личку.", "Коробка есть.", "Звонки не принимаю."],
)  # fmt: skip
CYRILLIC = {
    "Nike": "найк",
    "Adidas": "адидас",
    "Apple": "эпл",
    "Samsung": "самсунг",
    "Xiaomi": "сяоми",
    "Puma": "пума",
    "Zara": "зара",
    "Sony": "сони",
    "Levi's": "левайс",
    "Dyson": "дайсон",
    "New Balance": "нью бэланс",
    "LEGO": "лего",
    "IKEA": "икеа",
}
TYPOS = {
    "Nike": "Nkie",
    "Adidas": "Addidas",
    "New Balance": "New Balanse",
    "Salomon": "Salomom",
    "Levi's": "Levis",
    "Michael Kors": "Micheal Kors",
    "Samsung": "Samsng",
    "Xiaomi": "Xaomi",
    "Fjallraven": "Fjalraven",
    "Columbia": "Colombia",
    "Carhartt": "Carhart",
    "Converse": "Convers",
    "Puma": "Pumma",
    "Garmin": "Garmim",
    "Dyson": "Daison",
    "Chicco": "Chico",
    "Furla": "Furlla",
}
EMOJI = ["🔥", "👟", "✅", "💯", "😍", "⚡️", "❗️", "📦", "✨", "💥"]
ALIKE = (
    ["like {b}", "{b}-style", "inspired by {b}", "not {b}, a no-name copy", "looks like {b}"],
    ["как у {b}", "типа {b}", "в стиле {b}", "реплика {b}", "аналог {b}"],
)


def _group(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _size(rng: random.Random, kind: str | None, lang: int, hard: bool) -> tuple[str | None, str | None]:
    """(text, expected) of a size; ``hard``: several notations or a range."""
    if kind is None:
        return None, None
    if kind == "shoe":
        eu = rng.randint(36, 46)
        us = eu - 33
        if hard:
            return rng.choice([
                (f"EU {eu} / US {us}", f"EU {eu}"), (f"US {us} (EU {eu})", f"US {us}"),
                (f"размер EU {eu}, он же US {us}" if lang else f"size EU {eu}, that is US {us}", f"EU {eu}"),
                (f"RU {eu - 1} / EU {eu}", f"RU {eu - 1}"),
            ])  # fmt: skip
        return rng.choice([f"размер {eu}", f"р-р {eu}", f"{eu} размер"] if lang else [f"size {eu}", f"sz {eu}"]), str(
            eu
        )
    if kind == "letter":
        letter = rng.choice(["XS", "S", "M", "L", "XL", "XXL"])
        if hard:
            ru = {"XS": 42, "S": 44, "M": 46, "L": 48, "XL": 50, "XXL": 52}[letter]
            return (
                f"размер {ru}-{ru + 2}, на {letter}" if lang else f"fits {ru}-{ru + 2} RU, {letter}"
            ), f"{ru}-{ru + 2}"
        return (f"размер {letter}" if lang else f"size {letter}"), letter
    if kind == "jeans":
        w, length = rng.choice([28, 30, 31, 32, 33, 34, 36]), rng.choice([30, 32, 34])
        if hard:
            return f"W{w} L{length} ({w + 14} RU)" if lang else f"W{w} L{length} (EU {w + 14})", f"W{w} L{length}"
        return f"W{w} L{length}", f"W{w} L{length}"
    ru = rng.choice([42, 44, 46, 48, 50])
    if hard:
        return (f"размер {ru}-{ru + 2}" if lang else f"size {ru}-{ru + 2} (RU)"), f"{ru}-{ru + 2}"
    return (f"размер {ru}" if lang else f"size RU {ru}"), (str(ru) if lang else f"RU {ru}")


def _price(rng: random.Random, low: int, high: int, lang: int, hard: bool) -> tuple[str, int, str | None]:
    """(text, price, currency) of an asking price; ``hard``: an unusual notation."""
    price = rng.randrange(low, high, 100 if high < 20000 else 500)
    if hard:
        options = [
            (f"{_group(price)} ₽", "RUB"), (f"${price // 90}", "USD"), (f"{price // 90} USD", "USD"),
            (f"€{price // 100}", "EUR"), (f"{_group(price * 5)} ₸", "KZT"), (f"{price}", None),
        ]  # fmt: skip
        options += (
            [(f"{price}р", "RUB"), (f"{_group(price)} рублей", "RUB"), (f"{price // 100} евро", "EUR")]
            if lang
            else [
                (f"{_group(price)} rubles", "RUB"),
                (f"{price // 100} euros", "EUR"),
                (f"{price // 90} dollars", "USD"),
            ]
        )
        if price % 1000 == 0:
            options.append((f"{price // 1000}к ₽" if lang else f"{price // 1000}k RUB", "RUB"))
        text, currency = rng.choice(options)
        value = {"USD": price // 90, "EUR": price // 100, "KZT": price * 5}.get(currency or "", price)
        return text, value, currency
    return rng.choice(
        [(f"{price} руб.", price, "RUB"), (f"{_group(price)} ₽", price, "RUB")]
        if lang
        else [(f"{price} RUB", price, "RUB"), (f"${price // 90}", price // 90, "USD")]
    )


def _listing(rng: random.Random, kind: str, lang: int) -> tuple[str, dict[str, object]]:
    fits = {
        "size_notation": lambda p: p[5] is not None,
        "typo": lambda p: p[1] in TYPOS,
        "cyrillic_brand": lambda p: p[1] in CYRILLIC,
    }.get(kind, lambda p: True)
    category, brand, models, nouns_en, nouns_ru, size_kind, (low, high) = rng.choice([p for p in PRODUCTS if fits(p)])
    pick = rng.randrange(len(models))
    model = models[pick]
    nouns = nouns_ru if lang else nouns_en
    noun = nouns[pick] if len(nouns) == len(models) else rng.choice(nouns)  # one noun per model when listed so
    colour = rng.choice(list(COLOURS))
    condition = rng.choice(list(CONDITIONS))
    size_text, size = _size(rng, size_kind, lang, hard=kind == "size_notation")
    price_text, price, currency = _price(rng, low, high, lang, hard=kind == "price_currency")
    expected: dict[str, object] = {
        "category": category,
        "brand": brand,
        "model": model,
        "colour": colour,
        "size": size,
        "condition": condition,
        "price": price,
        "currency": currency,
    }
    brand_text = {"typo": TYPOS.get(brand, brand), "cyrillic_brand": CYRILLIC.get(brand, brand)}.get(kind, brand)
    if kind == "not_brand":
        brand_text = rng.choice(ALIKE[lang]).format(b=brand)
        expected.update(brand=None, model=None)
    model_text = model or ""
    if kind == "typo" and model and len(model) > 5:
        cut = rng.randrange(1, len(model) - 1)
        model_text = model[:cut] + model[cut + 1 :] if model[cut].isalpha() else model  # one letter dropped
        expected["model"] = model  # the listing's model despite the typo
    title = (
        f"{noun.capitalize()} {brand_text} {model_text}".strip()
        if kind != "not_brand"
        else f"{noun.capitalize()} {brand_text}"
    )
    colour_text = rng.choice(COLOURS[colour][lang])
    if "цвета" not in colour_text and rng.random() < 0.5:
        colour_text = f"цвет {colour_text}" if lang else f"colour: {colour_text}"
    parts = [colour_text, rng.choice(CONDITIONS[condition][lang])]
    if size_text:
        parts.append(size_text)
    price_part = (f"цена {price_text}" if lang else f"price {price_text}") if rng.random() < 0.6 else price_text
    if kind == "absent":  # drop two to four of the optional fields
        dropped = rng.sample(["colour", "condition", "size", "price", "model"], rng.randint(2, 4))
        for name in dropped:
            expected[name] = None
            if name == "price":
                expected["currency"] = None
        parts = [p for p, name in zip(parts, ["colour", "condition", "size"], strict=False) if name not in dropped]
        if "model" in dropped:
            title = f"{noun.capitalize()} {brand_text}"
        price_part = "" if "price" in dropped else price_part
        if "price" in dropped and rng.random() < 0.5:
            price_part = "цена договорная" if lang else "price negotiable"
    if kind == "conflict":
        price_part, parts, title = _conflict(rng, lang, expected, price_part, parts, title, currency)
    body = [title, *parts, price_part, rng.choice(FILLERS[lang])]
    body = [b for b in body if b]
    middle = body[1:-1]  # the title stays first and the filler last; the rest comes in any order
    rng.shuffle(middle)
    body = [body[0], *middle, body[-1]]
    if kind == "emoji":
        body = [f"{b} {rng.choice(EMOJI)}" if rng.random() < 0.7 else b for b in body]
        body[0] = rng.choice(EMOJI) * rng.randint(1, 3) + " " + body[0]
    separator = rng.choice([". ", ", ", "\n", " | "])
    text = separator.join(b.rstrip(".") for b in body)
    if kind == "typo" and lang:
        text = text.replace("россовки", "росовки").replace("размер", "размр")
    return text, expected


def _conflict(rng, lang, expected, price_part, parts, title, currency):
    """A second, contradicting mention; the expected value is the one that holds."""
    sized = str(expected["size"] or "").isdigit()
    case = rng.choice(["price", "colour", "size", "delivery"] if sized else ["price", "colour", "delivery"])
    if case == "price" and expected["price"]:
        old = int(expected["price"]) + rng.choice([500, 1000, 2000])
        symbol = {"RUB": "₽", "USD": "$", "EUR": "€"}.get(currency or "", "")
        price_part = (
            f"было {old}, отдам за {expected['price']} {symbol}"
            if lang
            else f"was {old}, now {expected['price']} {symbol}"
        ).strip()
    elif case == "colour":
        other = rng.choice([c for c in COLOURS if c != expected["colour"]])
        said, true = COLOURS[other][lang][0], COLOURS[expected["colour"]][lang][0]  # type: ignore[index]
        parts = [
            f"цвет на фото искажён: не {said}, а {true}" if lang else f"looks {said} in the photo but it is {true}",
            *parts[1:],
        ]
    elif case == "size":
        wrong = "38" if expected["size"] != "38" else "40"
        parts = [
            *parts[:2],
            f"размер {wrong}, ой, нет, {expected['size']}"
            if lang
            else f"size {wrong}, sorry, I mean {expected['size']}",
        ]
    else:
        fee = rng.choice([300, 350, 500])
        price_part = f"{price_part}, доставка {fee} ₽ отдельно" if lang else f"{price_part}, shipping {fee} RUB extra"
    return price_part, parts, title


def make(seed: int = SEED) -> list[dict[str, object]]:
    """The listings, in a fixed order."""
    rng = random.Random(seed)
    rows = []
    for i in range(N_PER_KIND * len(KINDS)):
        kind = KINDS[i % len(KINDS)]
        # alternate Russian and English rounds; Cyrillic brand names are a Russian case
        lang = 1 if (i // len(KINDS)) % 2 == 0 or kind == "cyrillic_brand" else 0
        text, expected = _listing(rng, kind, lang)
        rows.append(
            {"id": f"L{i + 1:03d}", "kind": kind, "lang": "ru" if lang else "en", "text": text, "expected": expected}
        )
    return rows


def main(path: Path = OUT) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in make():
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
