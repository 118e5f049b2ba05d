"""Boilerplate in other languages (issue 11): month and weekday names masked, sentences split past A-Z."""

from __future__ import annotations

import random

import pytest

from recommender.boilerplate import Stripper, find_boilerplate, segments, signature, strip_boilerplate

# Words for the articles' own sentences, which must not come out as boilerplate.
VOCABULARY = {
    "de": "Gemeinderat Hafen Bahnhof Brücke Museum Markt Schule Haushalt Bürgermeister Fähre Wald Straße".split(),
    "fr": "conseil port gare pont musée marché école budget maire ferry forêt rue".split(),
    "es": "ayuntamiento puerto estación puente museo mercado escuela presupuesto alcalde ferry bosque calle".split(),
}
MONTHS = {
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split(),
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split(),
}
WEEKDAYS = {
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag".split(),
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche".split(),
    "es": "lunes martes miércoles jueves viernes sábado domingo".split(),
}
# A site template's date line in each language, and the signature it must be found as.
TEMPLATES = {
    "de": ("Aktualisiert am {w}, {d}. {m} {y}, {h}:{n} Uhr", "aktualisiert am #, #. # #, #:# uhr"),
    "fr": ("Mis à jour le {w} {d} {m} {y} à {h}h{n}", "mis à jour le # # # # à #h#"),
    "es": ("Actualizado el {w} {d} de {m} de {y} a las {h}:{n}", "actualizado el # # de # de # a las #:#"),
}


def corpus(language: str, n: int = 30) -> list[str]:
    """``n`` short articles of random sentences, each with the template line dated differently."""
    rng = random.Random(11)
    words = VOCABULARY[language]
    template = TEMPLATES[language][0]
    texts = []
    for i in range(n):
        body = [" ".join(rng.choice(words) for _ in range(9)).capitalize() + "." for _ in range(2)]
        dated = template.format(
            w=WEEKDAYS[language][i % 7],
            d=i % 28 + 1,
            m=MONTHS[language][i % 12],
            y=2020 + i % 7,
            h=f"{i % 24:02d}",
            n=f"{(7 * i) % 60:02d}",
        )
        texts.append("\n\n".join([body[0], dated, body[1]]))
    return texts


@pytest.mark.parametrize("language", ["de", "fr", "es"])
def test_a_dated_template_line_is_found_and_stripped(language: str) -> None:
    texts = corpus(language)
    found = find_boilerplate(texts)
    assert found == [TEMPLATES[language][1]]
    strip = Stripper(found)
    for text in texts:
        first, _, last = text.split("\n\n")
        assert strip(text) == first + "\n\n" + last


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("Aktualisiert am Dienstag, 3. März 2026", "aktualisiert am #, #. # #"),
        ("AKTUALISIERT AM SONNTAG, 3. MÄRZ 2026", "aktualisiert am #, #. # #"),
        ("Stand: Mi., 3. Mär. 2026", "stand: mi., #. #. #"),
        ("Mis à jour le mercredi 12 février 2026", "mis à jour le # # # #"),
        ("Publié le 1er déc. 2026, modifié le 3 fevrier", "publié le #er #. #, modifié le # #"),
        ("Actualizado el miércoles 5 de marzo de 2026", "actualizado el # # de # de #"),
        ("Publicado el sábado 5 de dic. de 2026", "publicado el # # de #. de #"),
        ("Aggiornato lunedì 3 ottobre 2026 alle 10:05", "aggiornato # # # # alle #:#"),
        ("Atualizado na terça-feira, 3 de março de 2026", "atualizado na #, # de # de #"),
        ("Bijgewerkt op woensdag 3 maart 2026", "bijgewerkt op # # # #"),
        ("Uppdaterad lördag 3 augusti 2026", "uppdaterad # # # #"),
        ("Opdateret søndag den 3. marts 2026", "opdateret # den #. # #"),
        ("Actualitzat dijous 3 de març de 2026", "actualitzat # # de # de #"),
    ],
    ids=[
        "de",
        "de-upper-case",
        "de-abbreviated",
        "fr",
        "fr-abbreviated",
        "es",
        "es-abbreviated",
        "it",
        "pt",
        "nl",
        "sv",
        "da",
        "ca",
    ],
)
def test_month_and_weekday_names_of_other_languages_are_masked(segment: str, expected: str) -> None:
    assert signature(segment) == expected


def test_only_whole_names_are_masked() -> None:
    # "mais" (but), "maison" and the compound "Samstagabend" hold a name, none is one;
    # two-letter weekdays and abbreviations that are common words stay.
    assert signature("Mais la maison du Samstagabend ouvre") == "mais la maison du samstagabend ouvre"
    assert signature("So sei es, sagte mi amigo: la mer, la vie, ter a mie") == (
        "so sei es, sagte mi amigo: la mer, la vie, ter a mie"
    )


# Computed with the English-only mask and A-Z sentence split before this change.
ENGLISH = [
    ("Posted on Monday 3 MAY 2026 by   the desk.", "posted on # # # # by the desk."),
    ("Last updated: Wed, 4 Jan 2026 09:15 GMT", "last updated: #, # # # #:# gmt"),
    ("This post was last updated on 3 May 2026", "this post was last updated on # # #"),
    ("Show Comments (0)", "show comments (#)"),
    ("Your email address will not be published.", "your email address will not be published."),
    (
        "Money markets in Marseille rallied on Sunday as junior monsters augmented the sunset.",
        "# # in # rallied on # as # # # the #.",
    ),
    (
        "Sept. 12, Oct 3rd, Thursday the 1st of December - decades of novels, fries and satire.",
        "#. #, # #rd, # the #st of # - # of #, # and #.",
    ),
]


@pytest.mark.parametrize(("segment", "expected"), ENGLISH, ids=[f"english-{i}" for i in range(len(ENGLISH))])
def test_english_signatures_are_unchanged(segment: str, expected: str) -> None:
    assert signature(segment) == expected


def test_english_sentences_split_as_before() -> None:
    line = (
        'The council met on Tuesday. "Quoted" start. (Bracket) start. 12 men came. '
        "e.g. lower case stays! [Square] one? Yes."
    )
    assert segments(line) == [
        "The council met on Tuesday.",
        '"Quoted" start.',
        "(Bracket) start.",
        "12 men came. e.g. lower case stays!",
        "[Square] one?",
        "Yes.",
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("La réunion a commencé à huit heures dans la grande salle de la mairie.", "Émile a parlé le premier."),
        (
            "Der Gemeinderat hat am Montag lange über den neuen Haushalt beraten.",
            "Über die Schulden wurde nicht gesprochen.",
        ),
        ("Совет собрался в понедельник утром в большом зале городской ратуши.", "Бюджет обсудили без споров."),
        ("Το δημοτικό συμβούλιο συνεδρίασε τη Δευτέρα στην αίθουσα του δημαρχείου.", "Ο δήμαρχος μίλησε πρώτος."),
        ("Rada miasta zebrała się w poniedziałek rano w dużej sali ratusza miejskiego.", "Łukasz mówił pierwszy."),
        ("El ayuntamiento se reunió el lunes por la mañana en el gran salón municipal.", "¿Quién habló primero?"),
        ("Le conseil municipal s'est réuni lundi matin dans la grande salle de la mairie.", "« Enfin », dit-il."),
        ("Der Gemeinderat hat am Montag lange über den neuen Haushalt beraten, sagte er.", "„Endlich“, sagte sie."),
    ],
    ids=["E-acute", "U-umlaut", "cyrillic", "greek", "L-stroke", "inverted-question-mark", "guillemet", "low-quote"],
)
def test_a_sentence_opening_with_any_capital_or_opening_mark_is_split(first: str, second: str) -> None:
    assert segments(f"{first} {second}") == [first, second]


def test_lower_case_letters_and_signs_after_a_full_stop_do_not_split() -> None:
    line = "Die Fläche ist ca. 3 m breit und 4 m lang, also ca. × 12 Quadratmeter. ähnlich wie éventuellement ça."
    assert len(line) > 80
    assert segments(line) == [
        "Die Fläche ist ca.",
        "3 m breit und 4 m lang, also ca. × 12 Quadratmeter. ähnlich wie éventuellement ça.",
    ]


CHINESE = [
    "今天北京天气晴朗，气温适宜，市民纷纷走出家门。",
    "公园里游人如织，孩子们在草地上放风筝！",
    "你明天还来吗？",
    "他说：“我们明天再来。”",
    "大家都笑了。",
]


def test_chinese_text_splits_after_its_full_stops() -> None:
    line = "".join(CHINESE) * 2
    assert len(line) > 80
    assert segments(line) == CHINESE * 2
    # A space after the full stop is not kept; a run of stops stays one.
    assert segments("。 ".join(["这是一个很长的句子，用来说明中文的句号后面不需要空格"] * 3) + "真的吗？！") == [
        "这是一个很长的句子，用来说明中文的句号后面不需要空格。",
        "这是一个很长的句子，用来说明中文的句号后面不需要空格。",
        "这是一个很长的句子，用来说明中文的句号后面不需要空格真的吗？！",
    ]


def test_stripping_a_chinese_sentence_joins_the_rest_without_spaces() -> None:
    template = "本文最后更新于二〇二六年十二月。"
    line = "".join(CHINESE[:2]) + template + "".join(CHINESE[2:])
    assert len(line) > 80
    assert strip_boilerplate(line, {signature(template)}) == "".join(CHINESE)
