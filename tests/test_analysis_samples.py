"""Sample-log reading: lm-eval's own layout (fast path) and any other JSON layout agree."""

import json

import numpy as np
import pytest

from compass_eval.analysis.samples import _fast_entries, load_sample_log
from compass_model.errors import CompassInputError

ENTRIES = [
    # as lm-eval writes them: doc_id first, bulky fields, then filter/metrics/hashes/metric values
    {
        "doc_id": doc_id,
        "doc": {"text": 'a "quoted" , "filter": "none" line', "label": label},
        "target": str(label),
        "arguments": {f"gen_args_{j}": {"arg_0": "q", "arg_1": f" {j}"} for j in range(choices)},
        "resps": [[["-1.0", "False"]] for _ in range(choices)],
        "filtered_resps": [["-1.0", "False"] for _ in range(choices)],
        "filter": filter_name,
        "metrics": ["roc_auc", "acc"],
        "doc_hash": f"hash{doc_id}",
        "prompt_hash": "p",
        "target_hash": "t",
        "roc_auc": [label, prob],
        "acc": float(label == (prob > 0.5)),
    }
    for doc_id, label, prob, choices in [(2, 1, 0.9, 2), (0, 0, 0.2, 3), (1, 1, 0.4, 2)]
    for filter_name in ("none", "other")
]


def _write(path, entries, **dumps):
    path.write_text("".join(json.dumps(e, ensure_ascii=False, **dumps) + "\n" for e in entries))
    return path


@pytest.mark.parametrize("metric", ["roc_auc", "acc"])
def test_fast_and_full_paths_agree(tmp_path, metric):
    fast = load_sample_log(_write(tmp_path / "a.jsonl", ENTRIES), metric, "none", True)
    # reordered keys and other separators: not lm-eval's layout, parsed entry by entry
    reordered = [dict(reversed(list(e.items()))) for e in ENTRIES]
    full = load_sample_log(
        _write(tmp_path / "b.jsonl", reordered, separators=(",", ":")), metric, "none", True
    )
    # the first file takes the head/tail fast path, the second the entry-by-entry one
    assert _fast_entries((tmp_path / "a.jsonl").read_bytes(), metric, False) is not None
    assert _fast_entries((tmp_path / "b.jsonl").read_bytes(), metric, False) is None
    for log in (fast, full):
        assert log.doc_ids.tolist() == [0, 1, 2]
        assert log.doc_hashes.tolist() == [b"hash0", b"hash1", b"hash2"]
        assert log.choices.tolist() == [3.0, 2.0, 2.0]
        assert log.chance() == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    expected = [[0, 0.2], [1, 0.4], [1, 0.9]] if metric == "roc_auc" else [1.0, 0.0, 1.0]
    assert fast.values.tolist() == expected
    assert np.array_equal(fast.values, full.values)


def test_string_labels_are_coded_consistently(tmp_path):
    entries = [
        {"doc_id": i, "filter": "none", "f1": [gold, pred]}
        for i, (gold, pred) in enumerate([("pos", "neg"), ("neg", "neg"), ("pos", "pos")])
    ]
    log = load_sample_log(_write(tmp_path / "c.jsonl", entries), "f1", "none", False)
    assert log.values.tolist() == [[1, 0], [0, 0], [1, 1]]  # neg=0, pos=1 in sorted order


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [
                '{"doc_id": 0, "filter": "none", "acc": 1.0}',
                '{"doc_id": 0, "filter": "none", "acc": 0.0}',
            ],
            "appears twice",
        ),
        (['{"doc_id": 0, "filter": "none"}'], "lacks 'doc_id' or 'acc'"),
        (['{"doc_id": 0, "filter": "strict", "acc": 1.0}'], "no entries for filter 'none'"),
        (['{"doc_id": 0, "filter": "none", "acc": "yes"}'], "neither numbers nor pairs"),
        (['{"doc_id": 0, "filter": "none", "acc": [1, NaN]}'], "NaN or infinite"),
    ],
)
def test_bad_logs(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CompassInputError, match=message):
        load_sample_log(path, "acc", "none", False)
