"""Selection rules of a list: filters, fallback, collapse."""

from __future__ import annotations

from pathlib import Path

from recommender import Recommender, TrainOptions, read_corpus
from recommender.values import Filters


def test_fallback_obeys_every_filter(tiny_corpus: Path, tiny_options: TrainOptions) -> None:
    rec = Recommender.fit(read_corpus(tiny_corpus), tiny_options)
    # A business article, boxes restricted to sport: the fallback fills with sport only.
    result = rec.related("b1", 10, Filters.build(section="sport"), fallback=True)
    assert {rec.article(item.id)["section"] for item in result.items} == {"sport"}
    assert len(result.items) == 4
    dated = rec.related("b1", 10, Filters.build(section="sport", published_before="2026-02-10"), fallback=True)
    assert sorted(item.id for item in dated.items) == ["f1", "f2"]
    # Without a section filter the fallback is the source's own section, filtered: no science article has the tag.
    assert rec.related("s1", 10, Filters.build(tags=["tickets"]), fallback=True).items == []
    tagged = rec.related_to_text(
        "Comet", "the comet seen through the telescope", 10, Filters.build(tags=["tickets"]), fallback=True
    )
    assert [item.id for item in tagged.items] == ["f3"] and tagged.items[0].fallback
    draft = rec.related_to_text("Lithium", "lithium battery", 10, Filters.build(section="sport"), fallback=True)
    assert {rec.article(item.id)["section"] for item in draft.items} == {"sport"}
