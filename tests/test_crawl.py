"""End to end, in process: an article on the fake site in, a stored snapshot tree out."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import Settings, load_settings
from crawler.crawl import run_crawl
from crawler.model import DuplicateKind, Flag, Node, Outcome, Relation, Snapshot, Verdict
from crawler.report import render_json, snapshot_to_dict
from crawler.store import Store
from tests.fakesite import ARTICLE, ARTICLE_RELATED, DEAD_RELATED, ETAG, RELATED_OF, FakeSite


def fast_settings(tmp_path: Path, **crawl: object) -> Settings:
    """Settings for loopback tests: private addresses allowed, quick backoff, small timeouts."""
    return load_settings(
        None,
        environ={"CRAWLER_CONFIG": ""},
        overrides={
            "fetch": {
                "allow_private_networks": True,
                "backoff_base": 0.01,
                "backoff_max": 0.05,
                "retry_after_cap": 1.5,
                "url_timeout": 5.0,
                "read_timeout": 3.0,
            },
            "crawl": dict(crawl),
            "store": {"data_dir": str(tmp_path / "data")},
        },
    )


def by_path(snapshot: Snapshot, site: FakeSite) -> dict[str, list[Node]]:
    """Nodes grouped by their path on the fake site."""
    out: dict[str, list[Node]] = {}
    for node in snapshot.root.walk():
        if node.relation is not Relation.ROOT and node.url.startswith(site.base_url):
            out.setdefault(node.url[len(site.base_url) :], []).append(node)
    return out


@pytest.fixture
def text_article(tmp_path: Path, fake_site: FakeSite) -> Path:
    path = tmp_path / "story.txt"
    base = fake_site.base_url
    path.write_text(
        "A story.\n\nRelated article: Official record\n\n"
        f"{base}/news/target.html\n{base}/dead\n{base}/gone\n{base}/forbidden\n{base}/flaky\n"
        f"{base}/redirect/2\n{base}/soft404\n{base}/to-home/deep/story\n{base}/canon-a.html\n"
        f"{base}/canon-b.html\n{base}/redirect-final-a\n{base}/loop/a\n"
        f"{base}/dead.\n{base}/news/target.html?utm_source=x#frag\n{base}/ratelimited\n"
    )
    return path


async def test_text_article_verdicts_and_duplicates(
    tmp_path: Path, fake_site: FakeSite, text_article: Path
) -> None:
    settings = fast_settings(tmp_path, depth=0)
    with Store.open(settings.store.url()) as store:
        snap = await run_crawl(str(text_article), settings, store=store)
    nodes = by_path(snap, fake_site)
    verdict = {path: ns[0].verdict for path, ns in nodes.items()}
    assert snap.outcome is Outcome.COMPLETE
    assert verdict["/news/target.html"] is Verdict.OK
    assert verdict["/dead"] is Verdict.DEAD and verdict["/gone"] is Verdict.DEAD
    assert verdict["/forbidden"] is Verdict.BLOCKED
    assert verdict["/flaky"] is Verdict.OK and Flag.RETRIED in nodes["/flaky"][0].flags
    assert verdict["/ratelimited"] is Verdict.OK
    assert verdict["/redirect/2"] is Verdict.REDIRECTED
    assert [h.status_code for h in nodes["/redirect/2"][0].redirects] == [307, 302]
    assert verdict["/soft404"] is Verdict.SOFT404
    assert verdict["/to-home/deep/story"] is Verdict.SOFT404
    assert verdict["/loop/a"] is Verdict.DEAD and "loop" in (nodes["/loop/a"][0].reason or "")
    # The trailing full stop is not part of the URL: an exact duplicate of /dead.
    dead = nodes["/dead"]
    assert len(dead) == 2 and dead[1].duplicate_kind == DuplicateKind.EXACT
    assert dead[1].duplicate_of == dead[0].url and Flag.DUPLICATE in dead[1].flags
    assert dead[1].verdict is Verdict.DEAD
    tracked = nodes["/news/target.html?utm_source=x#frag"][0]
    assert tracked.duplicate_kind == DuplicateKind.NORMALIZED
    # A repeat of an unredirected URL shows no redirect it never made (its final URL is its own).
    assert (tracked.final_url, tracked.redirects) == (tracked.url, [])
    assert dead[1].final_url == dead[1].url
    assert nodes["/canon-b.html"][0].duplicate_kind == DuplicateKind.CANONICAL
    assert nodes["/redirect-final-a"][0].duplicate_kind == DuplicateKind.REDIRECT
    assert nodes["/redirect-final-a"][0].duplicate_of == nodes["/news/target.html"][0].url
    # The same normalized URL is fetched once: /dead twice in the article, one request.
    assert fake_site.hits["/dead"] == 1
    assert snap.summary()["dead"] == 3 + 1  # /dead (twice), /gone, /loop/a


async def test_snapshot_is_stored_and_valid(
    tmp_path: Path, fake_site: FakeSite, text_article: Path, snapshot_schema: dict[str, object]
) -> None:
    import jsonschema

    settings = fast_settings(tmp_path, depth=0)
    with Store.open(settings.store.url()) as store:
        snap = await run_crawl(str(text_article), settings, store=store)
        assert snap.snapshot_id is not None
        loaded = store.load_snapshot(snap.snapshot_id)
        stats = store.stats()
    jsonschema.Draft202012Validator(
        snapshot_schema, format_checker=jsonschema.FormatChecker()
    ).validate(snapshot_to_dict(loaded))
    assert render_json(loaded) == render_json(snap)
    assert loaded.outcome is Outcome.COMPLETE
    # Bodies are stored once per content: /news/target.html and its tracking twin share one.
    assert 0 < stats["bodies"] < stats["nodes"]


async def test_related_stories_followed_to_depth(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=2)
    article = tmp_path / "a.md"
    article.write_text(f"# A\n\nSee [the article]({fake_site.url(ARTICLE)}).\n")
    snap = await run_crawl(str(article), settings)
    (ref,) = snap.root.children
    related = {n.url[len(fake_site.base_url) :]: n for n in ref.children}
    assert set(related) == set(ARTICLE_RELATED)
    assert all(n.relation is Relation.RELATED and n.depth == 2 for n in related.values())
    assert related[DEAD_RELATED].verdict is Verdict.DEAD
    # Each story appears once, under whichever page listed it first: deep-1 is listed by both
    # related-a and related-f, which are fetched at the same time.
    level3 = {
        c.url[len(fake_site.base_url) :]: parent.url[len(fake_site.base_url) :]
        for parent in related.values()
        for c in parent.children
    }
    expected = {p for r in ARTICLE_RELATED if r != DEAD_RELATED for p in RELATED_OF[r]}
    assert set(level3) == expected - {ARTICLE}  # the article itself is not repeated
    assert level3["/news/deep-2.html"] == "/news/related-a.html"
    assert level3["/news/deep-1.html"] in ("/news/related-a.html", "/news/related-f.html")
    # depth 2 stops there: nothing below the deep pages, and deeper-1 was never fetched.
    assert fake_site.hits["/news/deeper-1.html"] == 0
    assert ref.title == "Council approves new river bridge" and ref.published


async def test_depth_zero_follows_nothing(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(fake_site.url(ARTICLE) + "\n")
    snap = await run_crawl(str(article), settings)
    assert snap.root.children[0].children == []
    assert all(fake_site.hits[p] == 0 for p in ARTICLE_RELATED)


async def test_page_cap_makes_the_crawl_partial(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=2, max_pages=3)
    article = tmp_path / "a.txt"
    article.write_text(fake_site.url(ARTICLE) + "\n")
    snap = await run_crawl(str(article), settings)
    assert snap.outcome is Outcome.PARTIAL
    skipped = [n for n in snap.root.walk() if n.reason == "page limit reached for this crawl"]
    assert skipped and all(n.verdict is Verdict.SKIPPED for n in skipped)
    assert sum(fake_site.hits.values()) <= 3 + 2  # + robots.txt, and nothing else


async def test_robots_disallow_skips_related_pages(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=1)
    article = tmp_path / "a.html"
    article.write_text(
        f'<html><body><a href="{fake_site.url("/robots-related.html")}">x</a></body></html>'
    )
    snap = await run_crawl(str(article), settings)
    related = snap.root.children[0].children
    private = [n for n in related if "/private/" in n.url]
    assert private and private[0].verdict is Verdict.SKIPPED
    assert "robots" in (private[0].reason or "")
    assert fake_site.hits["/private/story.html"] == 0


async def test_live_url_article(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=0)
    snap = await run_crawl(fake_site.url(ARTICLE), settings)
    assert snap.root.status_code == 200
    assert snap.root.title == "Council approves new river bridge"
    refs = {n.url[len(fake_site.base_url) :] for n in snap.root.children}
    assert "/dead" in refs and "/news/related-a.html" in refs


async def test_network_down_is_inconclusive(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text("http://nonexistent-1.invalid/a\nhttps://nonexistent-2.invalid/b\n")
    snap = await run_crawl(str(article), settings)
    assert snap.outcome is Outcome.INCONCLUSIVE
    assert snap.summary()["dead"] == 0
    assert all(n.verdict is Verdict.ERROR for n in snap.root.children)


async def test_unknown_host_among_answers_is_dead(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(f"{fake_site.url('/news/target.html')}\nhttp://nonexistent.invalid/a\n")
    snap = await run_crawl(str(article), settings)
    assert snap.outcome is Outcome.COMPLETE
    assert snap.root.children[1].verdict is Verdict.DEAD


async def test_site_wide_soft404_is_caught_by_a_probe(tmp_path: Path, fake_site: FakeSite) -> None:
    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(f"{fake_site.url('/missing-story')}\n{fake_site.url('/news/target.html')}\n")
    snap = await run_crawl(str(article), settings)
    missing, target = snap.root.children
    assert missing.verdict is Verdict.SOFT404 and "made-up paths" in (missing.reason or "")
    assert target.verdict is Verdict.OK
    probes = [p for p in fake_site.hits if p.startswith("/missing-story-")]
    assert len(probes) == 1  # one made-up sibling was asked for, nothing else


async def test_cancelled_crawl_is_stored_partial(tmp_path: Path, fake_site: FakeSite) -> None:
    import asyncio

    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(f"{fake_site.url('/news/target.html')}\n{fake_site.url('/slow?delay=20')}\n")
    with Store.open(settings.store.url()) as store:
        task = asyncio.create_task(run_crawl(str(article), settings, store=store))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (info,) = store.list_snapshots()
        snap = store.load_snapshot(info.snapshot_id)
    assert snap.outcome is Outcome.PARTIAL and snap.finished_at is not None
    target, slow = snap.root.children
    assert target.verdict is Verdict.OK
    assert slow.verdict is Verdict.SKIPPED and "cut short" in (slow.reason or "")


async def test_interrupted_crawl_resumes_without_refetching(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(f"{fake_site.url('/news/target.html')}\n{fake_site.url('/dead')}\n")
    with Store.open(settings.store.url()) as store:
        first = await run_crawl(str(article), settings, store=store)
        assert first.snapshot_id is not None
        # Make it look like a crash: still "running", owned by a process that is gone.
        with store.engine.begin() as conn:
            from sqlalchemy import text

            conn.execute(
                text(
                    "UPDATE snapshots SET outcome='running', finished_at=NULL, "
                    'settings=\'{"owner": {"host": "gone", "pid": 1}}\' WHERE id=:i'
                ),
                {"i": first.snapshot_id},
            )
            conn.execute(
                text("UPDATE snapshots SET started_at=:t WHERE id=:i"),
                {"t": "2000-01-01 00:00:00.000000", "i": first.snapshot_id},
            )
        assert store.recover_interrupted(lambda info: False) == [first.snapshot_id]
        # Too old to resume: everything is fetched again.
        fake_site.reset()
        second = await run_crawl(str(article), settings, store=store)
        assert fake_site.hits["/dead"] == 1
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE snapshots SET outcome='partial', finished_at=NULL WHERE id=:i"),
                {"i": second.snapshot_id},
            )
        fake_site.reset()
        third = await run_crawl(str(article), settings, store=store)
    assert fake_site.hits["/dead"] == 0 and fake_site.hits["/news/target.html"] == 0
    target, dead = third.root.children
    assert target.verdict is Verdict.OK and Flag.RESUMED in target.flags
    assert dead.verdict is Verdict.DEAD and Flag.DEAD in dead.flags
    assert third.outcome is Outcome.COMPLETE


async def test_store_failure_is_a_store_error(tmp_path: Path, fake_site: FakeSite) -> None:
    from crawler.errors import StoreError

    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(f"{fake_site.url('/news/target.html')}\n")
    store = Store.open(settings.store.url())
    store.engine.dispose()
    (tmp_path / "data" / "crawler.db").unlink()
    (tmp_path / "data" / "crawler.db").mkdir()  # the database is now a directory: unopenable
    with pytest.raises(StoreError):
        await run_crawl(str(article), settings, store=store)


async def test_network_lost_mid_run_is_inconclusive(tmp_path: Path) -> None:
    """Hosts that answered stop resolving halfway: those links are not called dead."""
    import httpx

    from crawler.fetch import Fetcher

    answered: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if len(answered) < 2:
            answered.append(str(request.url))
            return httpx.Response(
                200, text="<title>fine</title>", headers={"content-type": "text/html"}
            )
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    settings = fast_settings(tmp_path, depth=0)
    settings = settings.model_copy(
        update={"fetch": settings.fetch.model_copy(update={"concurrency": 1, "retries": 0})}
    )
    article = tmp_path / "a.txt"
    article.write_text(
        "https://a.example/1\nhttps://b.example/1\nhttps://a.example/2\nhttps://b.example/2\n"
        "https://c.example/1\n"
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with client, Fetcher(settings.fetch, client=client) as fetcher:
        snap = await run_crawl(str(article), settings, fetcher=fetcher)
    assert snap.outcome is Outcome.INCONCLUSIVE
    verdicts = [n.verdict for n in snap.root.children]
    assert verdicts[:2] == [Verdict.OK, Verdict.OK]
    assert verdicts[2:] == [Verdict.ERROR] * 3 and snap.summary()["dead"] == 0


async def test_dead_hosts_at_the_end_are_still_dead(tmp_path: Path, fake_site: FakeSite) -> None:
    """Unknown hosts finishing last are dead links, not a lost network: they never answered."""
    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "a.txt"
    article.write_text(
        f"{fake_site.url('/news/target.html')}\nhttp://gone-1.invalid/a\nhttp://gone-2.invalid/b\n"
    )
    snap = await run_crawl(str(article), settings)
    assert snap.outcome is Outcome.COMPLETE
    assert [n.verdict for n in snap.root.children[1:]] == [Verdict.DEAD, Verdict.DEAD]


async def crawl_twice(tmp_path: Path, url: str, **crawl: object) -> tuple[Snapshot, Snapshot]:
    """An article citing `url`, crawled and then re-checked with the same store."""
    settings = fast_settings(tmp_path, **crawl)
    article = tmp_path / "a.txt"
    article.write_text(url + "\n")
    with Store.open(settings.store.url()) as store:
        first = await run_crawl(str(article), settings, store=store)
        second = await run_crawl(str(article), settings, store=store)
    return first, second


async def test_a_soft404_stays_one_when_the_recheck_is_not_modified(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    """A 304 confirms the stored page, so the verdict read from it must survive the re-check."""
    first, second = await crawl_twice(tmp_path, fake_site.url("/etag-soft404"), depth=0)
    assert first.root.children[0].verdict is Verdict.SOFT404
    node = second.root.children[0]
    assert node.status_code == 304 and Flag.NOT_MODIFIED in node.flags
    assert node.verdict is Verdict.SOFT404


async def test_a_recheck_asks_related_stories_conditionally(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    """Related stories' validators come from the store (asked once per page that lists them):
    the re-check gets 304s for them, and the soft 404 among them stays one."""
    first, second = await crawl_twice(tmp_path, fake_site.url("/etag-hub.html"), depth=1)
    related = {
        run: {
            n.url.rsplit("/", 1)[1]: n for n in snap.root.walk() if n.relation is Relation.RELATED
        }
        for run, snap in (("first", first), ("second", second))
    }
    assert set(related["first"]) == set(related["second"]) == {"etag.html", "etag-soft404.html"}
    assert all(n.status_code == 200 for n in related["first"].values())
    for node in related["second"].values():
        assert node.status_code == 304 and Flag.NOT_MODIFIED in node.flags
    assert related["second"]["etag-soft404.html"].verdict is Verdict.SOFT404
    assert related["second"]["etag.html"].verdict is Verdict.OK
    sent = [headers for _, path, headers in fake_site.requests if path == "/etag.html"]
    assert [h.get("If-None-Match") for h in sent] == [None, ETAG]


async def test_a_retry_waiting_out_retry_after_holds_no_connection_slot(
    tmp_path: Path, fake_site: FakeSite
) -> None:
    """Two URLs answered 429 (Retry-After: 1) at concurrency 2: the other URLs of the article are
    fetched while those two wait, not after them."""
    base = fake_site.base_url
    stories = [f"{base}{path}" for path in list(RELATED_OF)[:6]]
    article = tmp_path / "article.txt"
    article.write_text(f"{base}/ratelimited/a\n{base}/ratelimited/b\n" + "\n".join(stories) + "\n")
    settings = fast_settings(tmp_path, depth=0)
    settings = settings.model_copy(
        update={
            "fetch": settings.fetch.model_copy(update={"concurrency": 2, "per_host_concurrency": 2})
        }
    )
    snapshot = await run_crawl(str(article), settings)
    assert {n.verdict for n in snapshot.root.children} == {Verdict.OK}
    paths = [path for method, path, _ in fake_site.requests if method == "GET"]
    retried = [i for i, path in enumerate(paths) if path.startswith("/ratelimited/")]
    assert len(retried) == 4  # 429, then 200, for each
    first_retry = sorted(retried)[2]
    story_requests = [i for i, path in enumerate(paths) if path.startswith("/news/")]
    assert len(story_requests) == 6
    assert max(story_requests) < first_retry
