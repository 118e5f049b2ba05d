"""TrainOptions: every option's rule, and the round trip through a manifest's parameters."""

from __future__ import annotations

import math

import pytest

from recommender import TrainOptions
from recommender.errors import InvalidInputError


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 0}, "k must be an integer in [1, 200], got 0"),
        ({"k": True}, "k must be an integer in [1, 200], got True"),
        ({"min_similarity": math.nan}, "min_similarity must be a number in [0, 1), got nan"),
        ({"min_similarity": 1.0}, "min_similarity must be a number in [0, 1), got 1.0"),
        ({"semantic_weight": math.inf}, "semantic_weight must be a number in [0, 1], got inf"),
        ({"duplicate_threshold": 0}, "duplicate_threshold must be a number in (0, 1], got 0"),
        ({"neighbourhood_decay": 0}, "neighbourhood_decay must be a number in (0, 1e+06], got 0"),
        ({"recency_half_life_days": -3}, "recency_half_life_days must be a number in (0, 1e+06], got -3"),
        ({"tag_boost": 1.5}, "tag_boost must be a number in [0, 1], got 1.5"),
        ({"strip_boilerplate": "yes"}, "strip_boilerplate must be true or false, got 'yes'"),
        ({"ngram_max": 4}, "ngram_max must be an integer in [1, 3], got 4"),
        ({"candidates": "50"}, "candidates must be an integer in [1, 1000], got '50'"),
    ],
)
def test_each_rule_names_the_option_and_the_value(change: dict, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        TrainOptions(**change).validate()
    assert str(info.value) == message


def test_parameters_round_trip_and_missing_ones_take_defaults() -> None:
    options = TrainOptions(k=7, semantic_weight=0.5, recency_half_life_days=30.0, n_jobs=1)
    parameters = options.parameters()
    assert "n_jobs" not in parameters
    again = TrainOptions.from_parameters({**parameters, "unrelated": 1})
    assert again == TrainOptions(k=7, semantic_weight=0.5, recency_half_life_days=30.0)
    assert TrainOptions.from_parameters({}) == TrainOptions()
    with pytest.raises(InvalidInputError, match="parameters must be a JSON object, got str"):
        TrainOptions.from_parameters("k=7")
