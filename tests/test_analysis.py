"""Analysis per language, language detection, and boxes that keep to the query's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender import Recommender, TrainOptions, read_corpus
from recommender.analysis import Analyzer, normalize_language, stop_words
from recommender.detect import corpus_languages, detect
from recommender.errors import InvalidInputError
from recommender.values import Filters

from .conftest import write_jsonl


def test_each_language_has_its_own_stop_words() -> None:
    german = Analyzer("de", stop_words("de"))
    # English's list would drop "will" and "am" and keep "der" and "und".
    assert german("Der Hund und die Katze will am Fenster sitzen") == ["hund", "katze", "fenster", "sitzen"]
    french = Analyzer("fr", stop_words("fr"))
    assert french("Je ai un chien de garde") == ["chien", "garde"]
    english = Analyzer("en", stop_words("en", frozenset({"the", "a"})))
    assert english("The cat and a dog") == ["cat", "and", "dog"]


def test_elisions_are_cut_and_aujourdhui_stays_one_word() -> None:
    french = Analyzer("fr", stop_words("fr"))
    assert french("L'homme qu'il a vu aujourd’hui n'était pas l'ami d'Anne") == ["homme", "aujourdhui", "ami", "anne"]
    italian = Analyzer("it", frozenset())
    assert italian("dell'anno e l'amico") == ["anno", "amico"]
    # English keeps its apostrophes' split exactly as scikit-learn's analyzer does.
    assert Analyzer("en", frozenset())("l'homme don't") == ["homme", "don"]


def test_stemming_is_optional_and_per_language() -> None:
    assert Analyzer("de", stop_words("de"), stem=True)("Die Häuser der Städte") == ["haus", "stadt"]
    assert Analyzer("de", stop_words("de"))("Die Häuser der Städte") == ["häuser", "städte"]
    # No stemmer for the language: words stay as they are.
    assert Analyzer("zz", frozenset(), stem=True)("Häuser") == ["häuser"]


def test_cjk_runs_become_characters_and_bigrams() -> None:
    chinese = Analyzer("zh", frozenset())
    assert chinese("新华社电 GDP增长") == ["新", "华", "社", "电", "新华", "华社", "社电", "gdp", "增", "长", "增长"]
    # A CJK run inside another language's text is cut the same way.
    assert Analyzer("en", frozenset())("Visit 北京 today") == ["visit", "北", "京", "北京", "today"]
    words = Analyzer("zh", frozenset(), cjk="jieba")("新华社北京电")
    assert "北京" in words and "新华社" in words


def test_language_codes_are_normalised() -> None:
    assert normalize_language("de-AT") == "de" and normalize_language("zh_Hans") == "zh"
    assert normalize_language("EN") == "en" and normalize_language("") is None and normalize_language("123") is None
    with pytest.raises(InvalidInputError, match="language must be a language code such as 'en' or 'any', got 'x1'"):
        Filters.build(language="x1")
    assert Filters.build(language="FR-ca").language == "fr" and Filters.build(language="ANY").language == "any"


def test_detection_of_articles_and_corpora() -> None:
    assert detect("Der Bundestag hat am Mittwoch das Gesetz beschlossen") == "de"
    assert detect("新华社北京电 今天") == "zh"
    assert detect("12345 !!!") is None
    english = ["The council approved the new tram line for the city"] * 40
    assert corpus_languages(english.__getitem__, [None] * 40) == ["en"] * 40
    mixed = [*english[:4], "Le gouvernement a présenté une réforme des retraites aujourd'hui"]
    assert corpus_languages(mixed.__getitem__, [None, None, "en", None, None]) == ["en", "en", "en", "en", "fr"]
    # A record's own language wins, normalised.
    asked: list[int] = []
    assert corpus_languages(lambda i: asked.append(i) or "", ["pt-BR"]) == ["pt"] and asked == []


MIXED = [
    {"id": "en-1", "title": "Football cup final", "body": "The football club won the cup final with a late goal.", "language": "en"},
    {"id": "en-2", "title": "Cup final tickets", "body": "Football fans bought every ticket for the cup final.", "language": "en"},
    {"id": "en-3", "title": "League table", "body": "The football club now tops the league after the cup win.", "language": "en"},
    {"id": "de-1", "title": "Pokalfinale gewonnen", "body": "Der Fußball Verein gewann das Pokalfinale mit einem späten Tor.", "language": "de"},
    {"id": "de-2", "title": "Karten für das Pokalfinale", "body": "Fußball Fans kauften jede Karte für das Pokalfinale.", "language": "de"},
    {"id": "de-3", "title": "Tabelle der Liga", "body": "Der Fußball Verein führt die Liga nach dem Pokalfinale an.", "language": "de"},
    {"id": "mix-1", "title": "Football Pokalfinale", "body": "football cup final Pokalfinale Fußball Verein club", "language": "de"},
]  # fmt: skip


@pytest.fixture
def mixed(tmp_path: Path) -> Recommender:
    corpus = write_jsonl(tmp_path / "mixed.jsonl", MIXED)
    return Recommender.fit(read_corpus(corpus), TrainOptions(k=6, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1))


def test_a_box_keeps_to_the_query_language_unless_asked(mixed: Recommender) -> None:
    assert mixed.manifest["language_counts"] == {"de": 4, "en": 3}
    assert {item.id[:2] for item in mixed.related("en-1", 6).items} == {"en"}
    assert {item.id[:2] for item in mixed.related("de-1", 6).items} <= {"de", "mi"}
    crossed = mixed.related("en-1", 6, Filters.build(language="any")).items
    assert "mix-1" in {item.id for item in crossed}
    assert {item.id[:2] for item in mixed.related("en-1", 6, Filters.build(language="de")).items} <= {"de", "mi"}
    assert mixed.related("en-1", 6, Filters.build(language="fr")).items == []
    assert mixed.article("en-1")["language"] == "en"


def test_a_draft_is_analysed_and_answered_in_its_language(mixed: Recommender) -> None:
    german = mixed.related_to_text("Pokalfinale", "Der Fußball Verein und die Fans im Pokalfinale", 6)
    assert german.items and {item.id[:2] for item in german.items} <= {"de", "mi"}
    english = mixed.related_to_text("Cup final", "The football club and the fans at the cup final", 6)
    assert english.items and {item.id[:2] for item in english.items} == {"en"}
    told = mixed.related_to_text("Cup", "football cup final", 6, language="de")
    assert {item.id[:2] for item in told.items} <= {"de", "mi"}


def test_languages_survive_save_and_load(tmp_path: Path, mixed: Recommender) -> None:
    mixed.save(tmp_path / "models")
    loaded = Recommender.load(tmp_path / "models")
    assert loaded.languages == ["de", "en"] and loaded.parts.stop_words.keys() == {"de", "en"}
    assert "und" in loaded.parts.stop_words["de"] and "und" not in loaded.parts.stop_words["en"]
    for article_id in loaded.ids:
        assert loaded.related(article_id, 6) == mixed.related(article_id, 6)
