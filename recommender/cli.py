"""The ``recommender`` command: a thin shell over the library.

Errors are one line on stderr with exit code 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import RecommenderError

MAX_LIMIT = 100


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


def _add_models_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder of model bundles (default: $RECOMMENDER_MODELS_DIR or models/)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="recommender", description="Related-article recommendations.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"recommender {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model bundle from corpus files and make it current")
    p.add_argument(
        "--corpus",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="corpus file (.jsonl, .json or .csv, optionally .gz); repeatable",
    )
    _add_models_dir(p)
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
    p.add_argument("--jobs", type=_int_in("--jobs", 1, 256), default=None, help="worker processes (default: all cores)")
    p.add_argument(
        "--keep", type=_int_in("--keep", 1, 1000), default=3, help="bundle versions kept on disk (default 3)"
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
    p.add_argument("--corpus", action="append", required=True, type=Path, metavar="PATH")
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

    p = sub.add_parser("info", help="show the current bundle's manifest")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_models_dir(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``recommender`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args, parser) or 0)
    except RecommenderError as exc:
        print(f"recommender: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recommender: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


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


def _models_dir(args: argparse.Namespace) -> Path:
    from .bundle import default_models_dir

    return args.models_dir or default_models_dir()


def _cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .train import TrainOptions, train

    chosen = {
        "semantic_weight": args.semantic_weight,
        "semantic_components": args.semantic_components,
        "candidates": args.candidates,
        "duplicate_threshold": args.duplicate_threshold,
        "recency_half_life_days": args.recency_half_life,
        "tag_boost": args.tag_boost,
        "section_boost": args.section_boost,
    }
    options = TrainOptions(
        k=args.k,
        min_similarity=args.min_similarity,
        title_weight=args.title_weight,
        min_df=args.min_df,
        max_df=args.max_df,
        ngram_max=args.ngram_max,
        n_jobs=args.jobs,
        strip_boilerplate=not args.keep_boilerplate,
        **{k: v for k, v in chosen.items() if v is not None},
    )
    result = train(
        args.corpus, _models_dir(args), options, on_error=args.on_error, progress=not args.quiet, keep=args.keep
    )
    if result.skipped:
        print(f"recommender: {result.skipped_summary}", file=sys.stderr)
        for problem in result.skipped[:20]:
            print(f"  {problem}", file=sys.stderr)
        if len(result.skipped) > 20:
            print(f"  ... and {len(result.skipped) - 20} more", file=sys.stderr)
    print(
        f"trained {result.version}: {result.articles} articles, vocabulary {result.vocabulary}, "
        f"{result.seconds:.1f} s, bundle {result.bundle_bytes / 1e6:.1f} MB in {result.folder}"
    )
    print("  seconds: " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in result.timings.items()))
    return 0


def _cmd_related(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .recommend import Filters, Recommender

    if (args.id is None) == (args.text is None):
        parser.error("related needs exactly one of an article ID or --text")
    filters = Filters.build(
        section=args.section,
        tags=args.tag,
        exclude=args.exclude,
        published_after=args.published_after,
        published_before=args.published_before,
    )
    rec = Recommender.load(_models_dir(args))
    if args.id is not None:
        result = rec.related(args.id, args.limit, filters, explain=args.explain, fallback=args.fallback)
    else:
        result = rec.related_to_text(
            args.title, args.text, args.limit, filters, explain=args.explain, fallback=args.fallback
        )
    items = rec.describe(result.items)
    if args.format == "json":
        _print_json(
            {
                "model_version": result.model_version,
                "id": result.source_id,
                "collapsed": result.collapsed,
                "items": items,
            }
        )
    else:
        _print_table(items)
    return 0


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _print_table(items: list[dict[str, Any]]) -> None:
    if not items:
        print("(no related articles above the minimum similarity)")
        return
    width = min(40, max(len(i["id"]) for i in items))
    print(f"{'score':>6}  {'id':<{width}}  title")
    for item in items:
        mark = "  (fallback)" if item.get("fallback") else ""
        print(f"{item['score']:6.3f}  {item['id']:<{width}}  {item['title'][:80]}{mark}")
        if item.get("why"):
            terms = ", ".join(f"{w['term']} {w['contribution']:.3f}" for w in item["why"])
            print(f"{'':6}  {'':<{width}}  why: {terms}")


def _cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .export import export_related
    from .recommend import Recommender

    rec = Recommender.load(_models_dir(args))
    if str(args.out) == "-":
        count = export_related(rec, sys.stdout, args.limit)
    else:
        count = export_related(rec, args.out, args.limit)
        print(f"exported {count} articles to {args.out}", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .bundle import load_bundle
    from .info import format_manifest

    bundle = load_bundle(_models_dir(args))
    if args.format == "json":
        _print_json(bundle.manifest)
    else:
        print(format_manifest(bundle.manifest, bundle.folder))
    return 0


def _cmd_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .evaluate import evaluate, write_report

    def log(message: str) -> None:
        if not args.quiet:
            print(f"recommender: {message}", file=sys.stderr)

    from .train import TrainOptions

    boosts = {"tag_boost": args.tag_boost, "section_boost": args.section_boost}
    report = evaluate(
        args.corpus,
        label_field=args.label_field,
        k=args.k,
        options=TrainOptions(**{k: v for k, v in boosts.items() if v is not None}),
        keep_fields=tuple(args.keep_field),
        baseline=not args.no_baseline,
        on_error=args.on_error,
        progress=not args.quiet,
        log=log,
    )
    print(report.markdown())
    for path in write_report(report, args.out):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _cmd_orphans(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .orphans import find_orphans
    from .recommend import Recommender

    rec = Recommender.load(_models_dir(args))
    found = find_orphans(rec, min_score=args.min_score, min_items=args.min_items)
    if args.format == "json":
        _print_json([o.to_json() for o in found])
        return 0
    print(
        f"{len(found)} of {len(rec)} articles have an empty or weak list "
        f"(fewer than {args.min_items} items or best score below {args.min_score})"
    )
    for o in found:
        print(f"{o.items:3d} items  best {o.best_score:5.3f}  {o.id}  {o.title[:70]}")
    return 0


def _cmd_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import os
    import tempfile

    import uvicorn

    # Workers are separate processes: settings reach them through the environment.
    os.environ["RECOMMENDER_MODELS_DIR"] = str(_models_dir(args).resolve())
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recommender-metrics-")
    url = f"http://{args.host}:{args.port}"
    print(f"recommender: demo page {url}/  API docs {url}/docs  ({args.workers} worker(s))", flush=True)
    uvicorn.run(
        "recommender.api.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=args.access_log,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return 0


_COMMANDS = {
    "evaluate": _cmd_evaluate,
    "orphans": _cmd_orphans,
    "serve": _cmd_serve,
    "train": _cmd_train,
    "related": _cmd_related,
    "export": _cmd_export,
    "info": _cmd_info,
}
