"""Documents whose answer flipped between two phases (correct → wrong, wrong → correct).

A reader trusts a difference more after seeing a few of the documents behind it. Documents are
matched by `doc_id` and content hash, as the paired tests match them. A document counts as
answered correctly when its per-sample score is 1 (acc, exact_match), when the predicted class
equals the gold one (F1/MCC pairs `[gold, pred]`), or, for ROC-AUC pairs `[label, p]`, when
thresholding p at 0.5 gives the label.
"""

from __future__ import annotations

import numpy as np

from compass_eval.analysis.samples import SampleLog

EXAMPLES = 5


def correct(log: SampleLog, metric: str) -> np.ndarray:
    """Per document: was it answered correctly?"""
    values = log.values
    if values.ndim == 1:
        return values >= 0.5
    if metric == "roc_auc":
        return (values[:, 1] >= 0.5) == (values[:, 0] > 0.5)
    return values[:, 0] == values[:, 1]


def flipped(a: SampleLog, b: SampleLog, metric: str, examples: int = EXAMPLES) -> dict:
    """Counts and the first `examples` doc ids of each direction, on the shared documents."""
    _, index_a, index_b = np.intersect1d(
        a.doc_ids, b.doc_ids, assume_unique=True, return_indices=True
    )
    same = a.doc_hashes[index_a] == b.doc_hashes[index_b]
    index_a, index_b = index_a[same], index_b[same]
    right_a, right_b = correct(a, metric)[index_a], correct(b, metric)[index_b]
    ids = a.doc_ids[index_a]
    lost, gained = ids[right_a & ~right_b], ids[~right_a & right_b]
    return {
        "shared": len(index_a),
        "lost": len(lost),
        "gained": len(gained),
        "lost_ids": lost[:examples].tolist(),  # ids come sorted from intersect1d
        "gained_ids": gained[:examples].tolist(),
    }
