"""The tree-growing rules of crawler/tree.py: keys, ranks, and which page a story belongs to."""

from __future__ import annotations

from crawler.model import Link, Node, Relation
from crawler.tree import Tree


def grow() -> tuple[Tree, dict[str, Node]]:
    """article -> references a, b; a -> related x; b -> related y, s (s is b's 2nd story)."""
    tree = Tree("https://news.example/article", "Article")
    nodes: dict[str, Node] = {}

    def add(name: str, parent: Node, relation: Relation, position: int) -> None:
        nodes[name] = tree.add(Link(f"https://news.example/{name}"), parent, relation, position)

    add("a", tree.root, Relation.REFERENCE, 0)
    add("b", tree.root, Relation.REFERENCE, 1)
    add("y", nodes["b"], Relation.RELATED, 0)
    add("s", nodes["b"], Relation.RELATED, 1)
    add("x", nodes["a"], Relation.RELATED, 0)
    return tree, nodes


def names(parent: Node) -> list[str]:
    return [child.url.rsplit("/", 1)[1] for child in parent.children]


def test_keys_follow_the_order_nodes_are_added_and_ranks_their_places() -> None:
    tree, nodes = grow()
    assert [nodes[n].key for n in ("a", "b", "y", "s", "x")] == [1, 2, 3, 4, 5]
    assert (nodes["s"].depth, nodes["s"].parent_key) == (2, nodes["b"].key)
    assert tree.ranks[nodes["s"].key] == (1, 1) and tree.ranks[nodes["x"].key] == (0, 0)


def test_a_story_moves_to_the_page_first_in_rank_order_and_keeps_key_order() -> None:
    tree, nodes = grow()
    a, b, s = nodes["a"], nodes["b"], nodes["s"]
    assert tree.adopt(s, a, 1)  # a (rank 0) lists s too: a comes first
    assert (s.parent_key, s.depth) == (a.key, 2)
    assert names(a) == ["s", "x"]  # by key, as the store loads them (s=4 before x=5)
    assert names(b) == ["y"]
    assert tree.ranks[s.key] == (0, 1)
    assert not tree.adopt(s, b, 1)  # b comes after a: s stays
    assert s.parent_key == a.key


def test_a_story_stays_under_a_page_first_in_rank_order() -> None:
    tree, nodes = grow()
    s, x = nodes["s"], nodes["x"]
    assert not tree.adopt(s, x, 0)  # x is deeper than b
    tree2, nodes2 = grow()
    assert not tree2.adopt(nodes2["x"], nodes2["b"], 5)  # same depth, b ranks after a
    assert nodes2["x"].parent_key == nodes2["a"].key


def test_a_shallower_page_wins_over_rank_order() -> None:
    tree, nodes = grow()
    deep = tree.add(Link("https://news.example/d"), nodes["x"], Relation.RELATED, 0)
    assert deep.depth == 3
    assert tree.adopt(deep, nodes["b"], 9)  # b is shallower than x, though it ranks later
    assert (deep.parent_key, deep.depth) == (nodes["b"].key, 2)
    assert names(nodes["x"]) == []


def test_settled_stories_and_references_do_not_move() -> None:
    tree, nodes = grow()
    tree.settle(nodes["s"])
    assert not tree.adopt(nodes["s"], nodes["a"], 0)
    assert nodes["s"].parent_key == nodes["b"].key
    assert not tree.adopt(nodes["b"], nodes["a"], 0)  # references belong to the article
    assert nodes["b"].parent_key == 0


def test_a_link_already_in_normal_form_keeps_one_string_for_both_urls() -> None:
    tree = Tree("https://news.example/article", "Article")
    plain = tree.add(Link("https://news.example/story"), tree.root, Relation.REFERENCE, 0)
    assert plain.normalized_url is plain.url
    tracked = tree.add(
        Link("https://news.example/story?utm_source=x"), tree.root, Relation.REFERENCE, 1
    )
    assert tracked.normalized_url == "https://news.example/story" != tracked.url
