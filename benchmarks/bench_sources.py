"""Suite 6: training from a WordPress export (wxr) against the same articles as JSON Lines.

Issue 11, acceptance 2: a 1 GB synthetic WXR export trains with a peak memory
under 1.5 times that of the same articles as JSON Lines. Both files are
written from one deterministic generator into the run's workspace:

* the export has what a real one has around each post: block comments, a
  ``[caption]`` and a ``[gallery]`` shortcode, categories and tags, post
  meta, and the featured image as an attachment item placed *after* its post
  (WordPress exports in id order and the image is usually uploaded after the
  post is created), so the reader must look ahead for it;
* the JSON Lines file holds the records the wxr source yields for those
  posts (the same ids, titles, bodies, URLs, dates, sections, tags, images).

Both are trained by ``recommender train`` as a subprocess with
``--semantic-weight 0`` (plain TF-IDF: the LSA view's memory would be the
same for both and would only dilute the ratio), measured like suite 1: the
larger of the process tree's sampled RSS and ``wait4``'s ``ru_maxrss``.
The JSON Lines training is the baseline; the report gives both peaks, both
times and their ratios.

Run by hand: ``python -m benchmarks.bench_sources --size-mb 200 [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .bench_training import _record, run_measured

# Size of the synthetic export per mode, in MB (10^6 bytes).
SIZE_MB = {"full": 1000, "quick": 4}
MB = 1_000_000
TOPICS = 200
_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
 xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel>
<title>Benchmark site</title>
<link>https://bench.example</link>
<language>en</language>
<wp:wxr_version>1.2</wp:wxr_version>
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Words:
    """A deterministic vocabulary: common words shared by all topics, and words of each topic."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        syllables = [c + v for c in "bcdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
        picks = self.rng.integers(0, len(syllables), size=(40_000, 3))
        words = sorted({"".join(syllables[i] for i in row) for row in picks})
        self.vocab = np.array(words, dtype=object)
        self.common = self.vocab[:3_000]
        # Zipf-like weights: a few very frequent words, a long tail.
        weights = 1.0 / np.arange(1, len(self.common) + 1)
        self.common_p = weights / weights.sum()
        topic_words = self.vocab[3_000:]
        self.topics = [topic_words[t::TOPICS][:150] for t in range(TOPICS)]

    def text(self, topic: int, count: int) -> str:
        common = self.rng.choice(self.common, size=count - count // 3, p=self.common_p)
        own = self.rng.choice(self.topics[topic], size=count // 3)
        words = np.concatenate([common, own])
        self.rng.shuffle(words)
        return " ".join(words.tolist())


def posts(seed: int = 20261202) -> Iterator[dict[str, Any]]:
    """Synthetic posts, each with a topic, paragraphs, a caption, tags and a featured image id."""
    words = Words(seed)
    rng = words.rng
    number = 0
    while True:
        number += 1
        post_id = 10 * number
        topic = int(rng.integers(0, TOPICS))
        paragraphs = [words.text(topic, int(rng.integers(60, 200))) for _ in range(int(rng.integers(3, 9)))]
        yield {
            "post_id": post_id,
            "image_id": post_id + 1,
            "topic": topic,
            "title": words.text(topic, 8).capitalize(),
            "paragraphs": paragraphs,
            "caption": words.text(topic, 10),
            "tags": [f"tag-{topic}-{int(t)}" for t in rng.integers(0, 5, size=2)],
            "date": f"20{10 + number % 15:02d}-{1 + number % 12:02d}-{1 + number % 28:02d} 10:{number % 60:02d}:00",
        }


def _content(post: dict[str, Any]) -> str:
    blocks = [f"<!-- wp:paragraph -->\n<p>{p}</p>\n<!-- /wp:paragraph -->" for p in post["paragraphs"]]
    image = f"https://bench.example/uploads/{post['image_id']}.jpg"
    blocks.insert(
        1,
        f'[caption id="attachment_{post["image_id"]}" width="640"]<img src="{image}" /> {post["caption"]}[/caption]',
    )
    blocks.append(f'<!-- wp:shortcode -->\n[gallery ids="{post["image_id"]}"]\n<!-- /wp:shortcode -->')
    return "\n\n".join(blocks)


def _record_of(post: dict[str, Any]) -> dict[str, Any]:
    """The record the wxr source yields for ``post`` (see recommender/sources/wxr.py)."""
    from recommender.sources.wordpress import strip_markup, wp_date

    return {
        "id": str(post["post_id"]),
        "title": post["title"],
        "body": strip_markup(_content(post)),
        "url": f"https://bench.example/?p={post['post_id']}",
        "excerpt": None,
        "image": f"https://bench.example/uploads/{post['image_id']}.jpg",
        "published_at": wp_date(post["date"], None),
        "section": f"Topic {post['topic']}",
        "tags": post["tags"],
        "author": "bench",
        "language": "en",
    }


def _write_item(out: TextIO, post: dict[str, Any]) -> None:
    pid, image = post["post_id"], post["image_id"]
    tags = "".join(f'<category domain="post_tag" nicename="{t}"><![CDATA[{t}]]></category>\n' for t in post["tags"])
    out.write(
        f"<item>\n<title>{post['title']}</title>\n<link>https://bench.example/?p={pid}</link>\n"
        f"<dc:creator><![CDATA[bench]]></dc:creator>\n"
        f'<guid isPermaLink="false">https://bench.example/?p={pid}</guid>\n<description></description>\n'
        f"<content:encoded><![CDATA[{_content(post)}]]></content:encoded>\n"
        f"<excerpt:encoded><![CDATA[]]></excerpt:encoded>\n<wp:post_id>{pid}</wp:post_id>\n"
        f"<wp:post_date>{post['date']}</wp:post_date>\n<wp:post_date_gmt>{post['date']}</wp:post_date_gmt>\n"
        f"<wp:status>publish</wp:status>\n<wp:post_type>post</wp:post_type>\n"
        f'<category domain="category" nicename="topic-{post["topic"]}"><![CDATA[Topic {post["topic"]}]]></category>\n'
        f"{tags}<wp:postmeta>\n<wp:meta_key><![CDATA[_thumbnail_id]]></wp:meta_key>\n"
        f"<wp:meta_value><![CDATA[{image}]]></wp:meta_value>\n</wp:postmeta>\n</item>\n"
        # The featured image, after its post.
        f"<item>\n<title>image {image}</title>\n<wp:post_id>{image}</wp:post_id>\n"
        f"<wp:status>inherit</wp:status>\n<wp:post_type>attachment</wp:post_type>\n"
        f"<wp:attachment_url>https://bench.example/uploads/{image}.jpg</wp:attachment_url>\n</item>\n"
    )


def write_pair(folder: Path, size_mb: float) -> tuple[Path, Path, int]:
    """A WXR export of about ``size_mb`` MB and the same posts as JSON Lines; (export, jsonl, posts)."""
    folder.mkdir(parents=True, exist_ok=True)
    wxr, jsonl = folder / f"export-{size_mb:g}mb.xml", folder / f"export-{size_mb:g}mb.jsonl"
    count = 0
    with open(wxr, "w", encoding="utf-8") as x, open(jsonl, "w", encoding="utf-8") as j:
        x.write(_HEAD)
        for post in posts():
            _write_item(x, post)
            j.write(json.dumps(_record_of(post), ensure_ascii=False) + "\n")
            count += 1
            if x.tell() >= size_mb * MB:
                break
        x.write("</channel>\n</rss>\n")
    return wxr, jsonl, count


def train(corpus: Path, models_dir: Path) -> dict[str, Any]:
    """``recommender train`` on one file (its kind sniffed), plain TF-IDF, as a measured subprocess."""
    command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models_dir)]
    command += ["--semantic-weight", "0", "--keep", "1", "--quiet"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    m = run_measured(command, env=env)
    if m.returncode != 0:
        raise RuntimeError(f"recommender train --corpus {corpus.name} failed ({m.returncode}): {m.stderr_tail}")
    out = _record(m)
    out["summary"] = m.stdout.strip().splitlines()[-1] if m.stdout.strip() else ""
    return out


def run(mode: str, workspace: Path, size_mb: float | None = None) -> dict[str, Any]:
    """Write the pair, train on each (JSON Lines first) and compare."""
    size = size_mb or SIZE_MB[mode]
    log(f"sources: writing a {size:g} MB WordPress export and the same posts as JSON Lines")
    wxr, jsonl, count = write_pair(workspace / "sources", size)
    log(f"sources: {count:,} posts; training on the JSON Lines file (baseline)")
    baseline = train(jsonl, workspace / "models" / "sources-jsonl")
    log("sources: training on the WordPress export")
    ours = train(wxr, workspace / "models" / "sources-wxr")
    result = {
        "posts": count,
        "wxr_bytes": wxr.stat().st_size,
        "jsonl_bytes": jsonl.stat().st_size,
        "command": "recommender train --corpus FILE --semantic-weight 0",
        "jsonl": baseline,
        "wxr": ours,
        "ratios": {
            "peak_wxr_vs_jsonl": round(ours["peak_bytes"] / baseline["peak_bytes"], 3),
            "seconds_wxr_vs_jsonl": round(ours["seconds"] / baseline["seconds"], 3),
        },
    }
    for path in (wxr, jsonl):
        path.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sources", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=SIZE_MB["quick"], help="size of the synthetic export")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the files and models (temporary)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="recommender-bench-sources-"))
    print(json.dumps(run("quick", workdir, args.size_mb), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
