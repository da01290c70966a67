import pytest

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box
from regionreasoner.core.relations import Relation, Tolerances, box_gap, find_relations, holds, relations_between

A = Box(0, 40, 20, 60)  # a 20x20 box on the left


@pytest.mark.parametrize(
    ("relation", "b", "expected"),
    [
        (Relation.LEFT_OF, Box(30, 40, 50, 60), True),
        (Relation.LEFT_OF, Box(19, 0, 39, 20), True),  # 1 px overlap < 10% of 20
        (Relation.LEFT_OF, Box(10, 40, 30, 60), False),
        (Relation.RIGHT_OF, Box(30, 40, 50, 60), False),
        (Relation.ABOVE, Box(0, 70, 20, 90), True),
        (Relation.ABOVE, Box(0, 0, 20, 30), False),
        (Relation.BELOW, Box(0, 0, 20, 30), True),
        (Relation.INSIDE, Box(-10, 30, 30, 70), True),
        (Relation.INSIDE, Box(5, 40, 30, 60), False),
        (Relation.OVERLAPPING, Box(10, 50, 30, 70), True),
        (Relation.OVERLAPPING, Box(20, 40, 40, 60), False),  # shares only an edge
        (Relation.TOUCHING, Box(20, 40, 40, 60), True),
        (Relation.TOUCHING, Box(21.5, 40, 40, 60), True),  # 1.5 px gap
        (Relation.TOUCHING, Box(25, 40, 40, 60), False),
        (Relation.TOUCHING, Box(10, 50, 30, 70), False),  # overlapping, not touching
        (Relation.NEXT_TO, Box(25, 45, 45, 65), True),
        (Relation.NEXT_TO, Box(25, 58, 45, 78), False),  # vertical extents barely shared
        (Relation.NEXT_TO, Box(60, 40, 80, 60), False),  # too far apart
        (Relation.NEAR, Box(25, 40, 45, 60), True),
        (Relation.NEAR, Box(100, 40, 120, 60), False),
    ],
)
def test_relation_definitions(relation: Relation, b: Box, expected: bool) -> None:
    assert holds(relation, A, b) is expected


def test_directional_relations_are_converse() -> None:
    b = Box(30, 70, 50, 90)
    assert holds(Relation.LEFT_OF, A, b) == holds(Relation.RIGHT_OF, b, A)
    assert holds(Relation.ABOVE, A, b) == holds(Relation.BELOW, b, A)
    rels = relations_between(A, b)
    assert Relation.LEFT_OF in rels and Relation.ABOVE in rels and Relation.INSIDE not in rels


def test_box_gap() -> None:
    assert box_gap(Box(0, 0, 10, 10), Box(13, 14, 20, 20)) == pytest.approx(5.0)
    assert box_gap(Box(0, 0, 10, 10), Box(5, 5, 20, 20)) == 0.0


def test_tolerances_validated() -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Tolerances(inside=1.5)
    with pytest.raises(ConfigError, match="touch_px"):
        Tolerances(touch_px=-1)
    strict = Tolerances(axis_overlap=0.0)
    assert not holds(Relation.LEFT_OF, A, Box(19, 0, 39, 20), strict)


def test_find_relations_in_questions() -> None:
    assert find_relations("Find the person to the right of <box>{context_bbox}</box> who is closest to him.") == [
        Relation.RIGHT_OF,
        Relation.NEAR,
    ]
    assert find_relations("the cup left of R1") == [Relation.LEFT_OF]
    assert find_relations("the guy beside the tree, below the sign") == [Relation.NEXT_TO, Relation.BELOW]
    assert find_relations("a red car") == []
    assert Relation.LEFT_OF.phrase == "to the left of"
