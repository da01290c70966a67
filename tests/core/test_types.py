from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from regionreasoner.core.geometry import Box
from regionreasoner.core.types import (
    Citation,
    Dialogue,
    Problem,
    ProblemKind,
    Region,
    RegionDraft,
    Severity,
    Turn,
    TurnDraft,
    Usage,
    region_number,
)

H = "a" * 64


def test_region_ids() -> None:
    assert region_number("R12") == 12
    for bad in ["R0", "R01", "r1", "X", "R", "R-1", "R1 "]:
        with pytest.raises(ValueError):
            region_number(bad)
    with pytest.raises(ValidationError):
        Region(id="R0", dialogue_id="d", turn=0, image=H, box=Box(0, 0, 1, 1))


def test_region_validation() -> None:
    r = Region(id="R3", dialogue_id="d", turn=1, image=H, box=[1, 2, 3, 4], point=[2, 3], score=0.5)
    assert r.box == Box(1, 2, 3, 4)
    assert Region.model_validate_json(r.model_dump_json()) == r
    with pytest.raises(ValidationError, match="inverted"):
        RegionDraft(box=[3, 0, 1, 1])
    with pytest.raises(ValidationError, match="finite"):
        RegionDraft(box=[0, 0, 1, 1], score=float("nan"))
    with pytest.raises(ValidationError, match="image hash"):
        Region(id="R1", dialogue_id="d", turn=0, image="xyz", box=[0, 0, 1, 1])
    with pytest.raises(ValidationError):
        RegionDraft(box=[0, 0, 1, 1], colour="red")  # type: ignore[call-arg]


def test_turn_round_trip_json() -> None:
    draft = TurnDraft(
        question="the cup next to R1",
        rendered_question="the cup next to bbox=[1, 2, 3, 4]",
        image=H,
        frame="fixed:840x840",
        regions=[RegionDraft(box=[0, 0, 5, 5])],
        referenced=["R1"],
        citations=[Citation(model_box=(1, 2, 3, 4), box=[1, 2, 3, 4], region="R1", verified=True)],
        problems=[Problem(kind=ProblemKind.MISSING_TAG, severity=Severity.WARNING, message="no scene")],
        usage=Usage(prompt_tokens=10, generated_tokens=5, model_calls=4, latency_ms=12.5),
    )
    assert TurnDraft.model_validate_json(draft.model_dump_json()) == draft
    turn = Turn(
        **draft.model_dump(exclude={"regions", "index"}),
        index=0,
        dialogue_id="d",
        created_at=datetime.now(UTC),
        regions=[Region(id="R2", dialogue_id="d", turn=0, image=H, box=[0, 0, 5, 5])],
    )
    dlg = Dialogue(id="d", image=H, created_at=datetime.now(UTC), turns=[turn])
    assert [r.id for r in dlg.regions] == ["R2"]
    assert Dialogue.model_validate_json(dlg.model_dump_json()) == dlg
    assert (Usage(prompt_tokens=1) + Usage(prompt_tokens=2, model_calls=1)).prompt_tokens == 3
