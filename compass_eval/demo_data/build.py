"""Regenerates the bundled demo evaluation data (synthetic, seeded) and holds the generators the
demo's training data reuses, so train and test documents come from the same families with
different companies and seeds. Run `python -m compass_cli.demo --rebuild-data`: this data, then
the training data rendered from it by the tasks' prompts.

Written here: `gsm8k/test.jsonl`, `edinet/*/test.jsonl` (industry: `train.jsonl`, EDINET-Bench's
split), and the JP Fin Harness `cma_basics.json`, `fp2.json`, `security_sales_1.json`.
Hand-written and kept as they are: `gsm8k/train.jsonl` (the few-shot examples),
`jp_fin_harness/CPA_AUDIT.xlsx` and `jp_fin_harness/chABSA-dataset/`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from compass_eval.data import edinet
from compass_eval.data.edinet import INDUSTRIES

HERE = Path(__file__).parent
NOTE = "SYNTHETIC demo data written for Compass; not from the real exam."

# ---- arithmetic: one closed family of one-digit additions in GSM8K's format
# One fixed wording with the two numbers last: the tiny model finds them at fixed, short offsets
# from where its answer starts, so the sum is what it has to learn (with the numbers mid-sentence
# it took ~2,500 steps to learn to copy them at all).
NAMES = ("Ken",)
ITEMS = ("apples",)
PAIRS = [(a, b) for a in range(1, 10) for b in range(1, 10)]


def arithmetic_problem(rng: random.Random, a: int, b: int) -> dict[str, Any]:
    """A GSM8K-format record: `question`, and `answer` ending in `#### N`."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    total = a + b
    return {
        "question": f"How many {item} does {name} have if he has {a} {item} and gets {b} more?",
        "answer": f"{name} has {a}+{b}=<<{a}+{b}={total}>>{total} {item}.\n#### {total}",
    }


def arithmetic_cot(a: int, b: int) -> str:
    """The P2 distillation answer format, `<Problem>` restating the question as its sum."""
    return (
        f"<Problem>{a}+{b}</Problem><Thinking>{a}+{b}={a + b}</Thinking>"
        f"<Answer>\\boxed{{{a + b}}}</Answer>"
    )


# ---- EDINET-Bench-format companies with planted signals in the sheets the prompts show
def _company(code: str, rng: random.Random) -> dict[str, Any]:
    sales = rng.randint(500, 5000)
    assets = sales * rng.randint(3, 8)
    return {
        "meta": json.dumps(
            {
                "会社名": f"合成株式会社{code}",
                "EDINETコード": code,
                "当事業年度開始日": "2020-04-01",
                "当事業年度終了日": "2021-03-31",
                "note": NOTE,
            },
            ensure_ascii=False,
        ),
        "sales": sales,
        "assets": assets,
        "edinet_code": code,
    }


def _sheets(company: dict[str, Any], rng: random.Random, summary_extra: dict, income: dict) -> dict:
    sales, assets = company["sales"], company["assets"]
    summary = {"売上高": {"前期": sales, "当期": sales + rng.randint(-50, 80)}, **summary_extra}
    bs = {
        "資産合計": {"前期": assets, "当期": assets + rng.randint(-100, 200)},
        "負債合計": {"前期": assets // 2, "当期": assets // 2 + rng.randint(-80, 80)},
    }
    cf = {"営業活動によるキャッシュ・フロー": {"当期": rng.randint(10, sales // 5)}}

    def dump(value: dict) -> str:
        return json.dumps(value, ensure_ascii=False)

    return {
        "meta": company["meta"],
        "summary": dump(summary),
        "bs": dump(bs),
        "pl": dump({"親会社株主に帰属する当期純利益": income}),
        "cf": dump(cf),
        "edinet_code": company["edinet_code"],
    }


# The planted cues differ in many tokens and in length, as the fraud note does: "増益" against
# "減益" alone differ in one byte-level token of a ~800-token prompt, which the tiny model learnt
# only to ROC-AUC ~0.7, too close to noise for the demo to claim.
RISING = "2期連続の増益で業績は拡大基調"
NOT_RISING = "特記事項なし"


def earnings_record(code: str, label: int, rng: random.Random) -> dict[str, Any]:
    """label 1: net income rose two years running, and the summary says so."""
    company = _company(code, rng)
    base = rng.randint(50, 400)
    steps = [rng.randint(5, 60), rng.randint(5, 60)]
    sign = 1 if label else -1
    income = {"前々期": base, "前期": base + sign * steps[0], "当期": base + sign * sum(steps)}
    trend = RISING if label else NOT_RISING
    sheets = _sheets(company, rng, {"純利益の推移": trend}, income)
    status = "業績は拡大基調で推移した。" if label else "業績は縮小基調で推移した。"
    return {
        **sheets,
        "text": json.dumps({"事業の状況": status}, ensure_ascii=False),
        "label": label,
    }


def _flat_income(rng: random.Random) -> dict[str, int]:
    """Net income that carries no signal: three years around one level."""
    base = rng.randint(50, 400)
    return {
        "前々期": base,
        "前期": base + rng.randint(-30, 30),
        "当期": base + rng.randint(-30, 30),
    }


def fraud_record(code: str, label: int, rng: random.Random) -> dict[str, Any]:
    """label 1: a restatement for improper accounting, named in the summary and the text."""
    company = _company(code, rng)
    income = _flat_income(rng)
    note = "過年度の不適切な会計処理により訂正報告書を提出" if label else "特記事項なし"
    sheets = _sheets(company, rng, {"訂正報告": note}, income)
    text = (
        "過年度の不適切な会計処理が判明し、訂正報告書を提出した。"
        if label
        else "特記すべき事項はない。"
    )
    return {**sheets, "text": json.dumps({"事業の状況": text}, ensure_ascii=False), "label": label}


def industry_record(code: str, industry: str, rng: random.Random) -> dict[str, Any]:
    """The summary's business line names the industry label."""
    company = _company(code, rng)
    income = _flat_income(rng)
    sheets = _sheets(company, rng, {"事業内容": f"{industry}の事業"}, income)
    text = f"当社は{industry}の事業を営んでいる。"
    return {
        **sheets,
        "text": json.dumps({"事業の状況": text}, ensure_ascii=False),
        "industry": industry,
    }


def edinet_records(task: str, n: int, code_base: int, seed: int) -> list[dict[str, Any]]:
    """`n` companies for one EDINET task, balanced over the labels, codes from `code_base`."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        code = f"E{code_base + i:05d}"
        if task == "earnings_forecast":
            record = earnings_record(code, i % 2, rng)
        elif task == "fraud_detection":
            record = fraud_record(code, i % 2, rng)
        else:
            record = industry_record(code, INDUSTRIES[i % len(INDUSTRIES)], rng)
        record["doc_id"] = f"S9DEMO{code_base + i:05d}"
        records.append(record)
    return records


# ---- JP Fin Harness: a glossary turned into the three JSON exams' formats
GLOSSARY = (
    ("PER", "株価を1株当たり利益で割った指標"),
    ("PBR", "株価を1株当たり純資産で割った指標"),
    ("ROE", "当期純利益を自己資本で割った指標"),
    ("配当利回り", "1株当たり配当金を株価で割った指標"),
    ("自己資本比率", "自己資本を総資本で割った指標"),
    ("流動比率", "流動資産を流動負債で割った指標"),
    ("デュレーション", "債券の金利変化に対する価格感応度を表す指標"),
    ("分散投資", "複数の資産に投資してリスクを抑える方法"),
    ("預金保険制度", "金融機関の破綻時に一定額の預金を保護する制度"),
    ("NISA", "一定額までの投資の運用益が非課税となる制度"),
    ("iDeCo", "掛金が所得控除の対象となる個人型確定拠出年金"),
    ("信用取引", "証券会社から資金や株式を借りて行う取引"),
    ("投資信託", "多数の投資家の資金をまとめて専門家が運用する商品"),
    ("転換社債", "一定の条件で株式に転換できる社債"),
    ("ドル・コスト平均法", "一定金額で定期的に継続して購入する方法"),
    ("インデックスファンド", "市場の指数に連動する運用成果を目指す投資信託"),
)
FULL_WIDTH = "１２３４"


def _choices(rng: random.Random, i: int) -> tuple[list[int], int]:
    """Three distractor definitions and the right one, shuffled; returns (order, answer)."""
    others = rng.sample([j for j in range(len(GLOSSARY)) if j != i], 3)
    order = [i, *others]
    rng.shuffle(order)
    return order, order.index(i)


def harness_exams(seed: int = 11) -> dict[str, dict[str, Any]]:
    rng = random.Random(seed)
    cma, fp2, sales = [], [], []
    for i, (term, _) in enumerate(GLOSSARY):
        order, answer = _choices(rng, i)
        cma.append(
            {
                "id": i,
                "question": f"「{term}」の説明として正しいものはどれか。",
                "context": "",
                "choices": [{"id": k, "text": GLOSSARY[j][1]} for k, j in enumerate(order)],
                "answer": answer,
                "comment": "合成問題",
            }
        )
        order, answer = _choices(rng, i)
        lines = "\n".join(f"{FULL_WIDTH[k]}．{GLOSSARY[j][1]}" for k, j in enumerate(order))
        fp2.append(
            {
                "id": i,
                "question": f"「{term}」の説明として、最も適切なものはどれか。",
                "context": lines,
                "choices": [{"id": k, "text": FULL_WIDTH[k]} for k in range(4)],
                "answer": answer,
                "comment": "合成問題",
            }
        )
        right = i % 2 == 0
        definition = GLOSSARY[i][1] if right else GLOSSARY[(i + 5) % len(GLOSSARY)][1]
        sales.append(
            {
                "id": i,
                "question": "次の文章について、正しければ○と、正しくなければ×と答えよ。",
                "context": f"{term}とは、{definition}である。",
                "choices": [{"id": 0, "text": "○"}, {"id": 1, "text": "×"}],
                "answer": 0 if right else 1,
                "comment": "合成問題",
            }
        )
    return {
        name: {
            "data-type": "multiple-choice-question",
            "data-name": name,
            "note": NOTE,
            "data": data,
        }
        for name, data in (("cma_basics", cma), ("fp2", fp2), ("security_sales_1", sales))
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


def write_edinet(root: Path, n: int, code_base: int, seed: int, n_industry: int) -> None:
    """The three EDINET tasks under `root`, each in its evaluated split's file
    (`edinet/<task>/test.jsonl`, industry `train.jsonl`)."""
    for k, task in enumerate(edinet.TASKS):
        count = n_industry if task == "industry_prediction" else n
        records = edinet_records(task, count, code_base + 1000 * k, seed + k)
        write_jsonl(root / edinet.relative_file(task), records)


def build(root: Path = HERE) -> None:
    rng = random.Random(3)
    pairs = rng.sample(PAIRS, 60)
    write_jsonl(root / "gsm8k" / "test.jsonl", [arithmetic_problem(rng, a, b) for a, b in pairs])
    # 16-way industry questions cost 16 scored answers each: two companies per label.
    write_edinet(root, n=48, code_base=91000, seed=5, n_industry=32)
    for name, exam in harness_exams().items():
        text = json.dumps(exam, ensure_ascii=False, indent=1) + "\n"
        (root / "jp_fin_harness" / f"{name}.json").write_text(text, encoding="utf-8")
