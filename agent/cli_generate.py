"""``regionreasoner generate`` and ``regionreasoner inpaint``: the NeoBabel generator from the command line.

    regionreasoner generate "een rode paraplu op het strand" --out x.png [--generator PATH --seed N --steps N
        --guidance W --device cuda]
    regionreasoner inpaint photo.png --region R2 --dialogue D "一把红色的雨伞" [--db URL --out y.png]

``inpaint`` repaints region R2 of dialogue D (its SAM2 mask when it has one, else its box) in IMAGE, which must be
one of the dialogue's image versions (the image it is about, or a version an earlier edit wrote), and records the
result as the dialogue's newest version, linked to IMAGE: the dialogue's next turn runs on it.  Both commands print
one JSON line.  ``--generator`` (or ``$REGIONREASONER_GENERATOR``) is a NeoBabel generator folder
(docs/generation.md); without either, ``world``, the generator trained here and shipped in the package;
``tiny`` builds an untrained tiny one.  Every mistake (a bad
prompt, path, region or dialogue) is one line and exit status 2, checked before the generator loads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regionreasoner.agent.cli_args import check_memory_url, device_name, existing_file, non_negative_int, positive_int
from regionreasoner.core.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

    from regionreasoner.tools.generate import Generator

__all__ = ["GENERATOR_ENV", "add_generate_commands", "cmd_generate", "cmd_inpaint"]

GENERATOR_ENV = "REGIONREASONER_GENERATOR"
"""The environment variable naming the generator folder when ``--generator`` is not given."""

_UNTRAINED = (
    "regionreasoner: the tiny generator's weights are untrained: its pictures are noise "
    "(pass --generator PATH, a NeoBabel generator folder, for real ones)"
)


def _guidance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value}: use a finite number >= 0 (0: no classifier-free guidance)")
    return value


def _sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--generator",
        default=None,
        help=f"NeoBabel generator folder (default: ${GENERATOR_ENV}, else 'world', the shipped one; 'tiny': untrained)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=None, help="the same seed gives the same picture")
    parser.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default: generator.json)")
    parser.add_argument("--guidance", type=_guidance, default=None, help="classifier-free guidance weight w >= 0")
    parser.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")


def add_generate_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``generate`` and ``inpaint`` subcommands to the ``regionreasoner`` parser."""
    gen = sub.add_parser("generate", help="make a picture from a prompt (en, zh, nl, fr, hi, fa, or mixed)")
    gen.add_argument("prompt", help="what to draw, in any of the six languages or code-switched")
    gen.add_argument("--out", required=True, help="the image file to write, e.g. x.png")
    _sampling_arguments(gen)
    gen.set_defaults(func=cmd_generate)
    inp = sub.add_parser("inpaint", help="repaint a region of a dialogue's image; the result is its new version")
    inp.add_argument("image", type=existing_file, help="the image to edit: the dialogue's image or one of its versions")
    inp.add_argument("prompt", help="what to paint there, in any of the six languages or code-switched")
    inp.add_argument("--region", required=True, help="the region to repaint, e.g. R2")
    inp.add_argument("--dialogue", required=True, help="the dialogue the region belongs to")
    inp.add_argument(
        "--db", "--memory", dest="db", default=None, help="memory URL (default: the SQLite file in REGIONREASONER_HOME)"
    )
    inp.add_argument("--out", default=None, help="the image file to write (default: <image>.inpainted.png)")
    _sampling_arguments(inp)
    inp.set_defaults(func=cmd_inpaint)


def _generator(args: argparse.Namespace) -> Generator:
    """The generator of ``--generator`` (or the environment), loaded; ``tiny`` builds one in a temporary folder."""
    from regionreasoner.tools.generate import Generator, build_tiny_generator
    from regionreasoner.tools.generate.shipped import DEFAULT_GENERATOR

    path = args.generator or os.environ.get(GENERATOR_ENV) or DEFAULT_GENERATOR
    if path == "tiny":
        print(_UNTRAINED, file=sys.stderr)
        path = str(build_tiny_generator(Path(tempfile.mkdtemp(prefix="rr-tiny-generator-")), seed=0))
    return Generator.from_pretrained(Path(path).expanduser(), device=args.device)


def _save(image: Image.Image, out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}", hint="pass --out a path you can write") from exc


def cmd_generate(args: argparse.Namespace) -> int:
    """``regionreasoner generate PROMPT --out FILE``: one picture, and a JSON line saying where it went."""
    from regionreasoner.agent.cli_chat import check_out_image
    from regionreasoner.tools.generate_tools import check_prompt

    prompt = check_prompt(args.prompt)
    out = Path(args.out)
    check_out_image(out)
    generator = _generator(args)
    image = generator.generate([prompt], seed=args.seed, steps=args.steps, guidance=args.guidance)[0]
    _save(image, out)
    print(json.dumps({"out": str(out), "width": image.width, "height": image.height, "seed": args.seed}))
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    """``regionreasoner inpaint IMAGE PROMPT --region R --dialogue D``: repaint R, record the new version."""
    from regionreasoner.agent.cli_chat import check_out_image
    from regionreasoner.core.images import load_image
    from regionreasoner.core.types import VersionDraft
    from regionreasoner.memory import RegionMemory
    from regionreasoner.tools.base import RegionTarget
    from regionreasoner.tools.generate_tools import check_prompt, region_mask

    prompt = check_prompt(args.prompt)
    check_memory_url(args.db, "--db")
    out = Path(args.out) if args.out else Path(Path(args.image).stem + ".inpainted.png")
    check_out_image(out)
    source = load_image(Path(args.image))
    with RegionMemory(args.db) as memory:
        versions = memory.versions(args.dialogue)
        if source.hash not in {v.image for v in versions}:
            raise InputError(
                f"{args.image} is none of the {len(versions)} image versions of dialogue {args.dialogue!r}",
                hint="pass the image the dialogue is about, or a version an earlier inpaint wrote",
            )
        region = memory.get_region(args.dialogue, args.region)
        found_on = memory.image_info(region.image)
        target = RegionTarget(
            name=region.id, box=region.box, size=(found_on.width, found_on.height), image=region.image, mask=region.mask
        )
        mask, source_of_mask = region_mask(target, source.width, source.height)
        generator = _generator(args)
        edited = generator.inpaint(
            source.image, mask, prompt, seed=args.seed, steps=args.steps, guidance=args.guidance
        ).convert("RGB")
        stored = memory.put_image(edited, parent=source.hash)
        version = memory.add_version(
            args.dialogue,
            VersionDraft(image=stored.hash, parent=source.hash, tool="inpaint", prompt=prompt, region=region.id),
        )
    _save(edited, out)
    print(
        json.dumps(
            {
                "out": str(out),
                "dialogue": args.dialogue,
                "version": version.number,
                "image": version.image,
                "parent": source.hash,
                "region": region.id,
                "mask": source_of_mask,
                "pixels": int(mask.sum()),
            },
            ensure_ascii=False,
        )
    )
    return 0
