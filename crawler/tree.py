"""The snapshot tree as a crawl grows it: keys, each node's place, and where a story several
pages list belongs.

A node's *rank* is its place as positions from the root: a reference's place in the article,
then a story's place in its page's related list. A story that several pages list belongs under
the shallowest of them, then the one first in rank order — a rule that does not depend on which
page answered first. A node may move until it is *settled*: while its own page is read (how
far it is followed depends on its depth), and once it has children of its own. A leaf may move
again when it is finished; the crawl then stores it again and, if its new depth asks for it,
follows its related stories.
"""

from __future__ import annotations

import bisect

from crawler.model import Link, Node, Relation, Verdict, one_copy
from crawler.urls import normalize_url


def _key_of(node: Node) -> int:
    return node.key


class Tree:
    """Builds the tree under one root; keys are given in the order nodes are added."""

    def __init__(self, url: str, title: str | None) -> None:
        self.root = Node(
            url=url, normalized_url=normalize_url(url), relation=Relation.ROOT, depth=0
        )
        self.root.verdict, self.root.title = Verdict.OK, title
        self.next_key = 1
        self.by_key: dict[int, Node] = {0: self.root}
        self.ranks: dict[int, tuple[int, ...]] = {0: ()}
        self.settled: set[int] = {0}

    def add(self, link: Link, parent: Node, relation: Relation, position: int) -> Node:
        """A new node for `link`, the `position`-th link of `parent` (article or page)."""
        node = Node(
            url=link.url,
            normalized_url=one_copy(normalize_url(link.url), link.url),
            relation=relation,
            depth=parent.depth + 1,
            key=self.next_key,
            parent_key=parent.key,
            line=link.line,
            text=link.text,
        )
        self.next_key += 1
        parent.children.append(node)
        self.by_key[node.key] = node
        self.ranks[node.key] = (*self.ranks[parent.key], position)
        return node

    def settle(self, node: Node) -> None:
        """Fix a node's place: no page adopts it from now on."""
        self.settled.add(node.key)

    def release(self, node: Node) -> None:
        """Let a finished node with no children move again: its place decides nothing more
        (the crawl re-reads it if it moves up far enough to be followed)."""
        self.settled.discard(node.key)

    def adopt(self, story: Node, page: Node, position: int) -> bool:
        """Move a related story that `page` lists too (as its `position`-th story) under `page`
        if that page is shallower than the story's parent, or as deep and first in rank order,
        and the story is not settled. True if it moved."""
        if story.relation is not Relation.RELATED or story.key in self.settled:
            return False
        rank = (*self.ranks[page.key], position)
        if (page.depth + 1, rank) >= (story.depth, self.ranks[story.key]):
            return False
        assert story.parent_key is not None
        siblings = self.by_key[story.parent_key].children
        siblings.pop(next(i for i, sibling in enumerate(siblings) if sibling is story))
        bisect.insort(page.children, story, key=_key_of)  # the store's order: by key
        story.parent_key, story.depth = page.key, page.depth + 1
        self.ranks[story.key] = rank
        return True
