"""The ``recommender`` command: a thin shell over the library.

Errors are one line on stderr with exit code 1; usage errors exit with 2.
The options are declared in :mod:`recommender.arguments`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .arguments import build_parser
from .errors import RecommenderError

__all__ = ["build_parser", "main"]


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
    except OSError as exc:
        # A folder that is missing, a file in the way, a full disk: the
        # system's reason and the path it concerns, on one line.
        print(f"recommender: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 1


def _describe_os_error(exc: OSError) -> str:
    """'PATH: reason' ('models: exists and is not a directory' for mkdir over a file)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    name = os.fsdecode(exc.filename)
    if exc.errno == errno.EEXIST and not os.path.isdir(name):
        reason = "exists and is not a directory"
    if exc.filename2 is not None:
        return f"{name} -> {os.fsdecode(exc.filename2)}: {reason}"
    return f"{name}: {reason}"


def _models_location(args: argparse.Namespace) -> Path | str:
    """``--models-dir``, else ``$RECOMMENDER_MODELS_DIR``, else ``models``: a folder, or a URL (kept as text)."""
    from .arguments import location

    return args.models_dir or location(os.environ.get("RECOMMENDER_MODELS_DIR") or "models")


def _models_dir(args: argparse.Namespace) -> Path:
    """The local models directory of a command that reads or writes one (a URL is refused)."""
    from .errors import InvalidInputError

    found = _models_location(args)
    if isinstance(found, str):
        hint = "serve it with 'recommender serve --models-url URL'" if args.command == "serve" else "use a folder"
        raise InvalidInputError(f"--models-dir {found!r}: only 'train' writes to a URL; {hint}")
    return found


def _log_url() -> str | None:
    """The database of the change log (``$RECOMMENDER_LOG_URL``; None: ``changes.sqlite`` in the models dir).

    Read from the environment only, not from a flag: the URL holds a password,
    and a command line is visible to every user of the machine.
    """
    return os.environ.get("RECOMMENDER_LOG_URL") or None


def _inputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    """The corpus paths and sources the command reads; a usage error when there are none or one is malformed."""
    from .errors import InvalidInputError
    from .sources import DEFAULT_USER_AGENT, Source

    if not args.corpus and not args.source:
        parser.error("give at least one --corpus PATH or --source KIND LOCATION")
    inputs: list[Any] = list(args.corpus)
    for kind, location in args.source:
        try:
            inputs.append(
                Source(
                    kind,
                    location,
                    post_types=tuple(args.post_type) or ("post",),
                    query=args.query,
                    timeout=args.timeout,
                    max_bytes=args.max_bytes,
                    user_agent=args.user_agent or DEFAULT_USER_AGENT,
                )
            )
        except InvalidInputError as exc:
            parser.error(f"--source {kind} {location}: {exc}")
    return inputs


def _cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .options import TrainOptions
    from .train import train

    chosen = {
        "semantic_weight": args.semantic_weight,
        "semantic_components": args.semantic_components,
        "candidates": args.candidates,
        "approximate_group_size": args.approximate_group_size,
        "approximate_spread": args.approximate_spread,
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
        stem=args.stem,
        cjk=args.cjk,
        detect_language=not args.no_detect_language,
        approximate=args.approximate,
        cluster=args.cluster,
        **{k: v for k, v in chosen.items() if v is not None},
    )
    result = train(
        _inputs(args, parser),
        _models_location(args),
        options,
        on_error=args.on_error,
        progress=not args.quiet,
        keep=args.keep,
        allow_empty=args.allow_empty,
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
    rec = Recommender.load(_models_dir(args), log_url=_log_url())
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

    rec = Recommender.load(_models_dir(args), log_url=_log_url())
    if str(args.out) == "-":
        count = export_related(rec, sys.stdout, args.limit)
    else:
        try:
            count = export_related(rec, args.out, args.limit)
        except OSError as exc:
            # The library writes through a temporary file beside the target:
            # the user asked for the target, so the error names it.
            raise OSError(exc.errno, exc.strerror, str(args.out)) from None
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
        _inputs(args, parser),
        label_field=args.label_field,
        k=args.k,
        options=TrainOptions(approximate=args.approximate, **{k: v for k, v in boosts.items() if v is not None}),
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

    rec = Recommender.load(_models_dir(args), log_url=_log_url())
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


def _cmd_upsert(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .bundle import resolve
    from .corpus import read_corpus
    from .writes import log_upserts

    inputs = _inputs(args, parser)
    resolve(_models_dir(args))  # no current bundle: say so before reading the corpus
    articles = read_corpus(inputs, on_error="fail").articles
    logged = log_upserts(_models_dir(args), articles, log_url=_log_url())
    print(f"logged {logged.count} upserts (seq {logged.first}-{logged.last})")
    return 0


def _cmd_delete(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .writes import log_deletes

    logged = log_deletes(_models_dir(args), args.ids, log_url=_log_url())
    print(f"logged {logged.count} deletes (seq {logged.first}-{logged.last})")
    return 0


def _cmd_compact(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .compact import compact

    result = compact(_models_dir(args), keep=args.keep, force=args.force, progress=not args.quiet, log_url=_log_url())
    print(result.summary())
    return 0


def _cmd_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import os

    from .api.server import serve
    from .api.settings import Settings

    # Workers are separate processes: settings reach them through the environment.
    if args.models_url:
        os.environ["RECOMMENDER_MODELS_URL"] = args.models_url
    else:
        os.environ["RECOMMENDER_MODELS_DIR"] = str(_models_dir(args).resolve())
    if args.cache_dir is not None:
        os.environ["RECOMMENDER_CACHE_DIR"] = str(args.cache_dir.resolve())
    settings = Settings()
    if settings.models_url:
        from .remote import RemoteStore

        RemoteStore(settings.models_url)  # no fsspec, an unknown protocol: one line and exit 1, before uvicorn
    url = f"http://{args.host}:{args.port}"
    print(f"recommender: demo page {url}/  API docs {url}/docs  ({args.workers} worker(s))", flush=True)
    return serve(settings, host=args.host, port=args.port, workers=args.workers, access_log=args.access_log)


_COMMANDS = {
    "evaluate": _cmd_evaluate,
    "orphans": _cmd_orphans,
    "serve": _cmd_serve,
    "train": _cmd_train,
    "related": _cmd_related,
    "export": _cmd_export,
    "info": _cmd_info,
    "upsert": _cmd_upsert,
    "delete": _cmd_delete,
    "compact": _cmd_compact,
}
