"""The lm-eval task class behind every Compass task: it records which data it evaluated.

After loading, the task writes `data_fingerprint`, `data_root`, `n_docs`, `prompt_variant`, the
source's document policy (EDINET: the resolved report budget) and, where documents can be cut,
`n_truncated` into its config's metadata, which lm-eval dumps to `configs[<task>]["metadata"]` in
the results JSON; the report refuses to compare phases whose fingerprints differ. Tasks whose
metadata names a `headline_metric` also emit it again as `score`, so a group can average unlike
headline metrics (chabsa's f1 with the other tasks' acc).
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.task import ConfigurableTask

from compass_eval.data.fingerprint import fingerprint_docs
from compass_eval.data.root import data_root
from compass_eval.data.sources import SOURCES

SCORE = "score"


class CompassTask(ConfigurableTask):
    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        # lm-eval hands a `class:` task its whole YAML, including the `class` key itself.
        super().__init__(config={k: v for k, v in config.items() if k != "class"}, **kwargs)
        headline = self._headline()
        if headline is not None:
            self._aggregation_list[SCORE] = self._aggregation_list[headline]
            self._higher_is_better[SCORE] = True

    def _headline(self) -> str | None:
        return (self.config.metadata or {}).get("headline_metric")

    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().download(dataset_kwargs, **kwargs)
        docs = list(self.eval_docs)
        metadata = self.config.metadata if self.config.metadata is not None else {}
        metadata.setdefault("prompt_variant", "default")
        metadata.update(
            data_fingerprint=fingerprint_docs(docs),
            data_root=str(data_root()),
            n_docs=len(docs),
        )
        source = (self.config.dataset_kwargs or {}).get("source")
        if source in SOURCES:
            metadata.update(SOURCES[source].policy(metadata))
        if docs and "truncated" in docs[0]:
            metadata["n_truncated"] = sum(bool(doc["truncated"]) for doc in docs)
        self.config.metadata = metadata

    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        scores = super().process_results(doc, results)
        headline = self._headline()
        if headline is not None:
            scores[SCORE] = scores[headline]
        return scores
