"""The ``recommender`` command line: its commands, options and their rules.

Values out of range are usage errors (exit code 2) naming the option and the rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .values import MAX_LIMIT

SOURCE_KINDS = ("wxr", "wp-json", "feed", "markdown", "html", "sql", "file")


def _add_inputs(p: argparse.ArgumentParser) -> None:
    """--corpus and --source (at least one of them) and the options of sources."""
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="corpus file (.jsonl, .json or .csv, optionally .gz), or a file or folder whose kind is "
        "unambiguous (a WordPress export, a feed, a folder of .md or .html); repeatable",
    )
    p.add_argument(
        "--source",
        action="append",
        nargs=2,
        default=[],
        metavar=("KIND", "LOCATION"),
        help=f"articles from a source: KIND is one of {', '.join(SOURCE_KINDS)}; LOCATION a file, folder or "
        "http(s) URL (sql: an SQLAlchemy URL); repeatable, mixable with --corpus",
    )
    p.add_argument(
        "--post-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="WordPress post types read by wxr and wp-json sources (default: post); repeatable",
    )
    p.add_argument("--query", metavar="SQL", help="the SELECT of a sql source (columns named as corpus fields)")
    p.add_argument(
        "--timeout",
        type=_float_in("--timeout", 0.1, 3600.0),
        default=30.0,
        help="seconds to wait for a URL source's answer (default 30)",
    )
    p.add_argument(
        "--max-bytes",
        type=_int_in("--max-bytes", 1, 1 << 40),
        default=100 * 1024 * 1024,
        help="largest document a URL source may fetch, in bytes (default 100 MiB)",
    )
    p.add_argument("--user-agent", default=None, help="User-Agent header of URL sources")


def _int_in(name: str, low: int, high: int):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be an integer in [{low}, {high}], got {value}")
        return value

    return parse


def _float_in(name: str, low: float, high: float, *, high_open: bool = False):  # type: ignore[no-untyped-def]
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        ok = low <= value < high if high_open else low <= value <= high
        if not ok:
            bracket = ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{name} must be a number in [{low}, {high}{bracket}, got {text!r}")
        return value

    return parse


def _cluster(text: str) -> str:
    from .cluster import check_cluster
    from .errors import InvalidInputError

    try:
        return check_cluster(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(f"--{exc}") from None


def location(text: str) -> Path | str:
    """A folder as a Path, a URL (``s3://bucket/models``) as it was written: Path would fold its '//'."""
    from .remote import is_url

    return text if is_url(text) else Path(text)


def _add_models_dir(parser: argparse.ArgumentParser, *, url: bool = False) -> None:
    where = " or an fsspec URL such as s3://bucket/models (needs recommender[remote])" if url else ""
    parser.add_argument(
        "--models-dir",
        type=location,
        default=None,
        help=f"folder of model bundles{where} (default: $RECOMMENDER_MODELS_DIR or models/)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="recommender", description="Related-article recommendations.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"recommender {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model bundle from corpus files and sources and make it current")
    _add_inputs(p)
    _add_models_dir(p, url=True)
    p.add_argument(
        "--on-error",
        choices=("fail", "skip"),
        default="fail",
        help="fail: stop at the first bad record, write nothing (default); skip: leave bad records out",
    )
    p.add_argument(
        "--k", type=_int_in("--k", 1, 200), default=20, help="neighbours precomputed per article (default 20)"
    )
    p.add_argument(
        "--min-similarity",
        type=_float_in("--min-similarity", 0.0, 1.0, high_open=True),
        default=0.05,
        help="cosine below which nothing is related (default 0.05)",
    )
    p.add_argument(
        "--title-weight",
        type=_float_in("--title-weight", 0.0, 100.0),
        default=2.0,
        help="how many times a title word counts against a body word (default 2)",
    )
    p.add_argument(
        "--min-df",
        type=_int_in("--min-df", 1, 1_000_000),
        default=3,
        help="ignore terms in fewer articles than this (default 3; at most one article in ten)",
    )
    p.add_argument(
        "--max-df",
        type=_float_in("--max-df", 0.0, 1.0),
        default=0.5,
        help="ignore terms in more than this share of articles (default 0.5)",
    )
    p.add_argument(
        "--ngram-max",
        type=_int_in("--ngram-max", 1, 3),
        default=1,
        help="longest word n-gram used as a term (default 1; 2 adds bigrams)",
    )
    p.add_argument(
        "--semantic-weight",
        type=_float_in("--semantic-weight", 0.0, 1.0),
        default=None,
        help="weight of the LSA score in the blend (0 turns the semantic view off)",
    )
    p.add_argument(
        "--semantic-components",
        type=_int_in("--semantic-components", 0, 1000),
        default=None,
        help="dimensions of the LSA view",
    )
    p.add_argument(
        "--candidates",
        type=_int_in("--candidates", 1, 1000),
        default=None,
        help="lexical candidates re-scored per article",
    )
    p.add_argument(
        "--approximate",
        action="store_true",
        help="candidates from exact all-pairs inside groups of similar articles (k-means of the TF-IDF rows), "
        "shared rare terms and neighbours' lists, instead of exact all-pairs (needs recommender[approximate])",
    )
    p.add_argument(
        "--approximate-group-size",
        type=_int_in("--approximate-group-size", 2, 1_000_000),
        default=None,
        help="articles per group, with --approximate (default 1200)",
    )
    p.add_argument(
        "--approximate-spread",
        type=_int_in("--approximate-spread", 1, 16),
        default=None,
        help="groups each article joins, with --approximate (default 4)",
    )
    p.add_argument(
        "--cluster",
        type=_cluster,
        default=None,
        metavar="SPEC",
        help="count terms and run the exact all-pairs step on a Dask cluster: local:N (N worker processes here) or a "
        "scheduler address such as tcp://scheduler:8786; the same lists as without it "
        "(needs recommender[cluster])",
    )
    p.add_argument(
        "--duplicate-threshold",
        type=_float_in("--duplicate-threshold", 0.01, 1.0),
        default=None,
        help="cosine from which two articles are near-duplicates (default 0.9)",
    )
    p.add_argument(
        "--recency-half-life",
        type=_float_in("--recency-half-life", 0.001, 1e6),
        default=None,
        metavar="DAYS",
        help="halve an item's score every DAYS of age (default: off)",
    )
    _add_boosts(p)
    p.add_argument(
        "--keep-boilerplate", action="store_true", help="do not detect and strip segments repeated across many articles"
    )
    p.add_argument("--stem", action="store_true", help="Snowball stemming, in the languages that have a stemmer")
    p.add_argument(
        "--cjk",
        choices=("ngrams", "jieba"),
        default="ngrams",
        help="Chinese, Japanese, Korean text as characters and bigrams (default) or jieba's words",
    )
    p.add_argument(
        "--no-detect-language",
        action="store_true",
        help="articles without a language field are English instead of detected",
    )
    p.add_argument("--jobs", type=_int_in("--jobs", 1, 256), default=None, help="worker processes (default: all cores)")
    p.add_argument(
        "--keep", type=_int_in("--keep", 1, 1000), default=3, help="bundle versions kept on disk (default 3)"
    )
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="write a model even when no article has a neighbour (refused by default)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("related", help="related articles for an article id or a text")
    p.add_argument("id", nargs="?", help="article id")
    p.add_argument("--text", help="body text of a draft (instead of an id)")
    p.add_argument("--title", default="", help="title of the draft (with --text)")
    p.add_argument("--limit", type=_int_in("--limit", 1, MAX_LIMIT), default=10, help="items (default 10)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--section", help="only articles of this section")
    p.add_argument("--tag", action="append", default=[], help="only articles with this tag (repeatable: any of them)")
    p.add_argument("--exclude", action="append", default=[], help="never this article id (repeatable)")
    p.add_argument("--published-after", help="only articles published on or after this ISO date")
    p.add_argument("--published-before", help="only articles published on or before this ISO date")
    p.add_argument("--explain", action="store_true", help="show the shared terms behind each score")
    p.add_argument(
        "--fallback",
        action="store_true",
        help="fill a short list with the newest articles of the section, marked as fallback",
    )
    _add_models_dir(p)

    p = sub.add_parser("export", help="write every article's related list as JSON Lines")
    p.add_argument("--out", required=True, type=Path, help="output file ('-' for standard output)")
    p.add_argument("--limit", type=_int_in("--limit", 1, MAX_LIMIT), default=10, help="items per article (default 10)")
    _add_models_dir(p)

    p = sub.add_parser("evaluate", help="measure relevance against a labeled corpus, beside a naive baseline")
    _add_inputs(p)
    p.add_argument("--label-field", default="category", help="field holding the label(s) (default category)")
    p.add_argument("--k", type=_int_in("--k", 1, 50), default=10, help="list length scored (default 10)")
    p.add_argument("--out", type=Path, default=Path("evaluation"), help="folder for the JSON, Markdown and PNG")
    p.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    p.add_argument(
        "--keep-field",
        action="append",
        choices=("tags", "section"),
        default=[],
        help="let the model see this field (hidden by default; never the label field), to measure a boost",
    )
    _add_boosts(p)
    p.add_argument(
        "--approximate", action="store_true", help="train as train --approximate does (needs recommender[approximate])"
    )
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("orphans", help="articles whose related list is empty or weak, for editors")
    p.add_argument(
        "--min-score",
        type=_float_in("--min-score", 0.0, 1.0),
        default=0.1,
        help="a list whose best score is below this is weak (default 0.1)",
    )
    p.add_argument(
        "--min-items",
        type=_int_in("--min-items", 1, 100),
        default=3,
        help="a list with fewer items than this is weak (default 3)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    _add_models_dir(p)

    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_int_in("--port", 1, 65535), default=8000, help="port (default 8000)")
    p.add_argument(
        "--workers",
        type=_int_in("--workers", 1, 64),
        default=1,
        help="worker processes sharing the memory-mapped bundle (default 1)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    _add_models_dir(p)
    p.add_argument(
        "--models-url",
        metavar="URL",
        help="serve the current bundle of shared storage (an fsspec URL written by 'train --models-dir URL'; "
        "needs recommender[remote]) instead of --models-dir; sets $RECOMMENDER_MODELS_URL",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="local folder the bundles of --models-url are downloaded into "
        "(default: $RECOMMENDER_CACHE_DIR, else ~/.cache/recommender/<digest of the URL>)",
    )

    p = sub.add_parser("upsert", help="log new or edited articles (applied by running servers, folded in by compact)")
    _add_inputs(p)
    _add_models_dir(p)

    p = sub.add_parser("delete", help="log the deletion of articles (applied by running servers, folded in by compact)")
    p.add_argument("ids", nargs="+", metavar="ID", help="article id (repeatable)")
    _add_models_dir(p)

    p = sub.add_parser("compact", help="fold the change log into a new current bundle, then truncate the log")
    _add_models_dir(p)
    p.add_argument("--force", action="store_true", help="refit even when no change is logged")
    p.add_argument(
        "--keep", type=_int_in("--keep", 1, 1000), default=3, help="bundle versions kept on disk (default 3)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("info", help="show the current bundle's manifest")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_models_dir(p)
    return parser


def _add_boosts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tag-boost",
        type=_float_in("--tag-boost", 0.0, 1.0),
        default=None,
        help="added to an item's score times the overlap (Jaccard) of its tags with the source's (default 0: off)",
    )
    p.add_argument(
        "--section-boost",
        type=_float_in("--section-boost", 0.0, 1.0),
        default=None,
        help="added to the score of an item in the source's section (default 0: off)",
    )
