# ruff: noqa: E501  (the phrase tables read best one entry a line)
"""Write data/production_log.jsonl: four weeks of made-up production traffic with a planted drift.

Deterministic (seeded): ``python data/make_production_log.py`` rewrites the same file byte for byte
(``--seed`` / ``--out`` for another one). Two marketplace tasks share the log:

- ``extraction``: a seller's description (the texts of data/listings.jsonl, sometimes re-posted
  with a small change) -> the listing fields as JSON. The model is mostly right; some fields are
  wrong or null, a few outputs are not JSON at all. When a field is wrong the seller often fixes
  it in the form: ``implicit.edited`` holds the corrected value (the listing's expected one).
- ``support``: a question of data/support_qa.jsonl -> an answer (its reference), a clarifying
  question, a refusal, or now and then another question's answer (wrong).

Each line is one interaction::

    {"id", "timestamp" (UTC, ISO 8601), "task", "variant", "prompt_version", "model",
     "inputs" ({"text"} or {"question", "section"}), "output" (raw text), "latency_s",
     "tokens" ({"input", "output"}), "cost_usd",
     "feedback" (null, or {"thumb": "up"|"down"|null, "comment", "problem"}),
     "implicit" ({"edited": null or {field: corrected value}, "retried", "abandoned", "escalated"}),
     "scores" (null, or {"judge": 0..1} for the share an online judge samples)}

The knobs (everything below is a knob; BEFORE and AFTER are the rates either side of DRIFT_FROM):

- ``SEED``, ``N`` interactions, ``START`` and ``DAYS``: the period; weekends carry ``WEEKEND`` of a
  weekday's traffic.
- ``DRIFT_FROM``: the first day of the planted drift (the last 7 days). From that day: more
  Russian inputs, longer inputs (sellers paste delivery and bargaining boilerplate), more
  electronics listings, more refusals, more invalid JSON, more wrong fields, slower calls
  (``latency``), and more thumbs-down as a consequence. Before it nothing changes, so a drift
  report should flag nothing there.
- ``EXTRACTION_SHARE``: the share of extraction calls; ``JUDGE_SAMPLE``: the share of support
  answers an online judge scores.
- Feedback behaviour (``P_*``): how often a user edits a wrong field, retries, abandons,
  escalates, leaves a thumb. With the defaults about 3-4% of interactions carry explicit
  feedback and 10-20% implicit feedback.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 16
N = 4000
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
DAYS = 28
DRIFT_FROM = datetime(2026, 10, 26, tzinfo=UTC)  # days 22-28 drift
WEEKEND = 0.7
EXTRACTION_SHARE = 0.6
JUDGE_SAMPLE = 0.15
OUT = Path(__file__).with_name("production_log.jsonl")
HERE = Path(__file__).parent

BEFORE = {
    "ru_extraction": 0.45, "ru_support": 0.10, "long_input": 0.08, "electronics_weight": 1.0,
    "refusal": 0.03, "json_invalid": 0.02, "field_error": 0.15, "latency": 1.0,
}  # fmt: skip
AFTER = {
    "ru_extraction": 0.80, "ru_support": 0.40, "long_input": 0.60, "electronics_weight": 5.0,
    "refusal": 0.14, "json_invalid": 0.09, "field_error": 0.24, "latency": 1.45,
}  # fmt: skip

P_EDIT_WRONG_FIELD = 0.6  # a wrong field is corrected by the seller
P_RETRY_INVALID = 0.5  # an empty form (invalid JSON): retry, else abandon or fill in by hand
P_THUMB_DOWN_WRONG = 0.12
P_THUMB_DOWN_REFUSED = 0.15
P_THUMB_UP_RIGHT = 0.02
P_ESCALATE_BAD = 0.4
P_ESCALATE_RIGHT = 0.04
P_RETRY_BAD = 0.2
P_ABANDON = 0.02
P_REPOST = 0.3  # a listing comes back slightly changed (re-posted): near-duplicate inputs

PRICE_IN, PRICE_OUT = 0.15e-6, 0.60e-6  # USD per token (gpt-4o-mini's list price)
EXTRACTION_VARIANTS = [("few_shot", 3, 0.8), ("constrained", 1, 0.2)]
SUPPORT_VARIANT = ("rag_answer", 5)
MODEL = "openai/gpt-4o-mini"
FIELDS = ["category", "brand", "model", "colour", "size", "condition", "price", "currency"]
COLOURS = ["black", "white", "grey", "red", "blue", "navy", "green", "beige", "brown", "pink"]

FILLER = {
    "ru": ["Торг уместен, пишите в личку.", "Отправлю СДЭК или Почтой России после оплаты.", "Ещё много вещей в профиле, посмотрите!",
           "Самовывоз у метро, вечером после 19:00.", "Состояние смотрите на фото, все вопросы до покупки.", "Обмен не интересует."],
    "en": ["Price is negotiable, message me.", "Ships the next working day after payment.", "Check my profile for more items!",
           "Pick-up near the station after 7 pm.", "See the photos for condition, ask before you buy.", "No swaps, sorry."],
}  # fmt: skip
REFUSAL = {
    "en": "Sorry, I can't help with that. Please contact Bazaar support via Help > Chat with support.",
    "ru": "Извините, я не могу с этим помочь. Напишите в поддержку Bazaar: Помощь > Чат с поддержкой.",
}
DONT_KNOW = {
    "en": "I don't know: the help centre does not say. Please ask Bazaar support via Help > Chat with support.",
    "ru": "Не знаю: в справке об этом ничего нет. Спросите поддержку Bazaar: Помощь > Чат с поддержкой.",
}
COMMENTS_EXTRACTION = ["wrong colour", "the brand is wrong", "price is not what I wrote", "size missing", "it filled in nothing",
                       "неправильный цвет", "не тот бренд", "цена не та", "ничего не заполнилось"]  # fmt: skip
COMMENTS_SUPPORT = ["didn't answer my question", "this is not what I asked", "useless, let me talk to a human",
                    "ответ не про мой вопрос", "бот не помог", "just refused"]  # fmt: skip
PROBLEMS = ["wrong_answer", "no_answer", "wrong_field", "other"]


def _read(name: str) -> list[dict]:
    """The rows of a data file, in id order: the log does not change when the file's rows are reordered."""
    rows = [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(rows, key=lambda row: str(row["id"]))


def _timestamps(rng: random.Random) -> list[datetime]:
    """N times over DAYS days: fewer at weekends, more by day than by night."""
    weights = [WEEKEND if (START + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(DAYS)]
    days = rng.choices(range(DAYS), weights=weights, k=N)
    hours = [min(23.999, max(0.0, rng.gauss(14, 4.5))) for _ in range(N)]
    return sorted(START + timedelta(days=d, seconds=int(h * 3600)) for d, h in zip(days, hours, strict=True))


def _tokens(text: str, lang: str) -> int:
    return max(1, round(len(text) / (2.6 if lang == "ru" else 3.8)))


def _latency(rng: random.Random, tokens_out: int, rates: dict) -> float:
    return round((0.35 + 0.011 * tokens_out) * rng.lognormvariate(0, 0.25) * rates["latency"], 3)


def _wrong(rng: random.Random, field: str, value):
    """A plausible mistake for one field: a null, or another value."""
    if value is None or rng.random() < 0.4:
        return None if value is not None else {"colour": rng.choice(COLOURS), "condition": "new"}.get(field)
    if field == "colour":
        return rng.choice([c for c in COLOURS if c != value])
    if field == "price":
        return round(value * rng.choice([0.5, 1.1, 10])) or None
    if field == "condition":
        return "new" if value == "used" else "used"
    if field == "category":
        return rng.choice(["clothing", "shoes", "home", "sports"])
    return None


def _extraction(rng: random.Random, listings: dict, rates: dict) -> tuple[dict, str, dict, dict | None, str]:
    lang = "ru" if rng.random() < rates["ru_extraction"] else "en"
    pool = listings[lang]
    weights = [rates["electronics_weight"] if x["expected"]["category"] == "electronics" else 1.0 for x in pool]
    listing = rng.choices(pool, weights=weights)[0]
    text = listing["text"]
    if rng.random() < P_REPOST:
        text = rng.choice(
            [text + " !", text.replace("\n", " \n"), text + " 🔥", text.upper() if len(text) < 60 else text + "."]
        )
    if rng.random() < rates["long_input"]:
        text = text + "\n" + " ".join(rng.sample(FILLER[lang], k=rng.randint(3, 6)))
    expected = dict(listing["expected"])
    output_fields = dict(expected)
    if rng.random() < rates["field_error"]:
        for field in rng.sample(FIELDS, k=rng.choice([1, 1, 1, 2])):
            output_fields[field] = _wrong(rng, field, expected[field])
    rendered = json.dumps(output_fields, ensure_ascii=False)
    valid = rng.random() >= rates["json_invalid"]
    output = (
        rendered
        if valid
        else rng.choice(
            [rendered[: rng.randint(20, len(rendered) - 5)], "Here are the fields: " + rendered.replace('"', "'")]
        )
    )
    wrong = {f: expected[f] for f in FIELDS if output_fields[f] != expected[f]}
    implicit = {"edited": None, "retried": False, "abandoned": False, "escalated": False}
    feedback = None
    if not valid:
        if rng.random() < P_RETRY_INVALID:
            implicit["retried"] = True
        elif rng.random() < 0.5:
            implicit["abandoned"] = True
        else:
            implicit["edited"] = {f: expected[f] for f in FIELDS}  # filled the whole form by hand
        if rng.random() < 2 * P_THUMB_DOWN_WRONG:
            feedback = {"thumb": "down", "comment": rng.choice(COMMENTS_EXTRACTION[4::4]), "problem": "no_answer"}
    elif wrong:
        if rng.random() < P_EDIT_WRONG_FIELD:
            implicit["edited"] = wrong
        if rng.random() < P_THUMB_DOWN_WRONG:
            feedback = {
                "thumb": "down",
                "comment": rng.choice(COMMENTS_EXTRACTION) if rng.random() < 0.6 else None,
                "problem": "wrong_field" if rng.random() < 0.5 else None,
            }
    elif rng.random() < P_THUMB_UP_RIGHT:
        feedback = {"thumb": "up", "comment": None, "problem": None}
    if rng.random() < P_ABANDON:
        implicit["abandoned"] = True
    return {"text": text}, output, implicit, feedback, lang


def _support(rng: random.Random, questions: dict, rates: dict) -> tuple[dict, str, dict, dict | None, str, float]:
    lang = "ru" if rng.random() < rates["ru_support"] else "en"
    qa = rng.choice(questions[lang])
    same_section = [
        q for q in questions[lang] if q["section"] == qa["section"] and q["id"] != qa["id"] and q["kind"] == "single"
    ]
    outcome = "right"
    if qa["kind"] == "unanswerable":
        output = DONT_KNOW[lang]
    elif rng.random() < rates["refusal"]:
        output, outcome = REFUSAL[lang], "refused"
    elif same_section and rng.random() < 0.06:
        output, outcome = rng.choice(same_section)["reference"], "wrong"
    else:
        output = qa["reference"]
    implicit = {"edited": None, "retried": False, "abandoned": False, "escalated": False}
    feedback = None
    bad = outcome != "right"
    implicit["escalated"] = rng.random() < (P_ESCALATE_BAD if bad else P_ESCALATE_RIGHT)
    implicit["retried"] = bad and rng.random() < P_RETRY_BAD
    implicit["abandoned"] = rng.random() < P_ABANDON
    p_down = {"right": 0.005, "wrong": P_THUMB_DOWN_WRONG, "refused": P_THUMB_DOWN_REFUSED}[outcome]
    if rng.random() < p_down:
        feedback = {
            "thumb": "down",
            "comment": rng.choice(COMMENTS_SUPPORT) if rng.random() < 0.7 else None,
            "problem": rng.choice(PROBLEMS[:2]) if rng.random() < 0.4 else None,
        }
    elif not bad and rng.random() < P_THUMB_UP_RIGHT:
        feedback = {"thumb": "up", "comment": None, "problem": None}
    judge = {"right": 0.85, "wrong": 0.2, "refused": 0.3}[outcome]
    judge = round(min(1.0, max(0.0, rng.gauss(judge, 0.1))), 2)
    return {"question": qa["question"], "section": qa["section"]}, output, implicit, feedback, lang, judge


def generate(seed: int = SEED) -> list[dict]:
    """The interactions, in time order (the same list for the same seed)."""
    rng = random.Random(seed)
    listings_all, questions_all = _read("listings.jsonl"), _read("support_qa.jsonl")
    listings = {lang: [x for x in listings_all if x["lang"] == lang] for lang in ("ru", "en")}
    questions = {lang: [q for q in questions_all if q["language"] == lang] for lang in ("ru", "en")}
    rows = []
    for i, ts in enumerate(_timestamps(rng), start=1):
        rates = AFTER if ts >= DRIFT_FROM else BEFORE
        scores = None
        if rng.random() < EXTRACTION_SHARE:
            task = "extraction"
            variant, version = rng.choices(
                [(v, n) for v, n, _ in EXTRACTION_VARIANTS], weights=[w for *_, w in EXTRACTION_VARIANTS]
            )[0]
            inputs, output, implicit, feedback, lang = _extraction(rng, listings, rates)
            prompt_tokens = 420 + _tokens(inputs["text"], lang)
        else:
            task, (variant, version) = "support", SUPPORT_VARIANT
            inputs, output, implicit, feedback, lang, judge = _support(rng, questions, rates)
            prompt_tokens = 900 + _tokens(inputs["question"], lang)
            if rng.random() < JUDGE_SAMPLE:
                scores = {"judge": judge}
        out_tokens = _tokens(output, lang)
        rows.append(
            {
                "id": f"p{i:05d}",
                "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "task": task,
                "variant": variant,
                "prompt_version": version,
                "model": MODEL,
                "inputs": inputs,
                "output": output,
                "latency_s": _latency(rng, out_tokens, rates),
                "tokens": {"input": prompt_tokens, "output": out_tokens},
                "cost_usd": round(prompt_tokens * PRICE_IN + out_tokens * PRICE_OUT, 8),
                "feedback": feedback,
                "implicit": implicit,
                "scores": scores,
            }
        )
    return rows


def write(path: Path = OUT, *, seed: int = SEED) -> Path:
    """Write the log as JSON lines (UTF-8, "\\n" line ends)."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in generate(seed))
    path.write_bytes(text.encode("utf-8"))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    print(write(args.out, seed=args.seed))
