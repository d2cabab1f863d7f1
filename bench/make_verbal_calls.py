"""Write espeak-ng telephone calls with planted echoes and echo questions (and calls
without), with their truth, for bench/verbal_eval.py.

    python bench/make_verbal_calls.py OUT_DIR [--n 4] [--seed 0] [--turns 40]
                                      [--echo-share 0.35] [--workers 2]

Each call alternates agent and customer turns of one or two sentences drawn from a
vocabulary of some 400 content words (tests.synthcall renders them: two espeak voices,
300-3400 Hz, bleed, hiss, 8 kHz mu-law). In ``echo_<i>`` calls a share of the answers
start by repeating the last two to four words of the partner's turn (as real
other-repetitions do): half of them as a short echo question alone ("The garage on
Friday?", which espeak says rising), half as a statement followed by a sentence. In
``plain_<i>`` calls no answer is planted. Truth (``<stem>.json``) lists every turn with
its text, speaker and times and, per answer, the echoed content words: planted, or
repeated by chance (an answer's first sentence sharing content words with the partner's
last sentence counts as an echo too, by the same definition).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp.verbal.content import content_words  # noqa: E402
from tests import synthcall as sc  # noqa: E402

# fmt: off
SUBJECTS = ("I", "we", "they", "he", "she", "my brother", "our neighbour", "the driver",
            "my sister", "the manager", "our landlord", "the doctor", "my colleague",
            "the engineer", "my uncle", "the plumber", "our grandmother", "the caretaker")
VERBS = ("moved", "painted", "cleaned", "repaired", "borrowed", "delivered", "collected",
         "replaced", "measured", "ordered", "returned", "inspected", "installed", "sold",
         "photographed", "wrapped", "weighed", "locked", "printed", "signed", "tested",
         "washed", "loaded", "carried", "polished", "planted", "packed", "shipped",
         "dropped", "hid", "stole", "fetched", "lifted", "pushed", "dragged", "tied",
         "folded", "scrubbed", "dusted", "sprayed", "rented", "hired", "insured", "valued",
         "auctioned", "donated", "buried", "rescued", "stacked", "dismantled", "assembled")
ADJECTIVES = ("green", "heavy", "broken", "wooden", "yellow", "ancient", "narrow", "purple",
              "silver", "enormous", "tiny", "crooked", "shiny", "orange", "velvet", "frozen",
              "plastic", "golden", "rusty", "leather", "copper", "striped", "marble",
              "dusty", "muddy", "spotless", "fragile", "bulky", "elegant", "faded", "glossy",
              "hollow", "lopsided", "massive", "polished", "rickety", "scarlet", "turquoise",
              "vintage", "woollen", "bronze", "crimson", "dented", "enamel", "flimsy")
NOUNS = ("sofa", "piano", "bicycle", "ladder", "fridge", "window", "carpet", "lamp",
         "mirror", "wardrobe", "freezer", "telescope", "guitar", "printer", "mattress",
         "kettle", "curtain", "chimney", "fence", "trailer", "canoe", "violin", "oven",
         "bookshelf", "umbrella", "suitcase", "blanket", "helmet", "trolley", "bucket",
         "saucepan", "hammock", "tractor", "scooter", "cabinet", "heater", "microwave",
         "radiator", "statue", "tablecloth", "painting", "vase", "basket", "drawer",
         "anchor", "banjo", "bathtub", "birdcage", "cushion", "dishwasher", "easel", "fountain",
         "generator", "harp", "jukebox", "lantern", "motorbike", "projector", "rocking horse",
         "sewing machine", "skateboard", "sledge", "stool", "toolbox", "typewriter", "wheelbarrow",
         "aquarium", "barbecue", "chandelier", "clock", "dresser", "hatstand", "kayak", "pram")
PLACES = ("garage", "kitchen", "basement", "garden", "warehouse", "harbour", "library",
          "station", "attic", "bakery", "museum", "pharmacy", "factory", "hospital",
          "stadium", "cottage", "hotel", "airport", "village", "market", "cathedral",
          "laundry", "school", "theatre", "office", "farmhouse", "barn", "cellar",
          "bridge", "castle", "chapel", "clinic", "dairy", "embassy", "ferry", "gallery",
          "greenhouse", "gymnasium", "lighthouse", "monastery", "orchard", "pier", "quarry",
          "restaurant", "shipyard", "stable", "studio", "tunnel", "vineyard", "zoo")
PREPOSITIONS = ("into the", "behind the", "near the", "outside the", "inside the",
                "across the", "beside the", "towards the")
TAILS = ("", "", "", "on Friday", "on Tuesday", "last winter", "this afternoon", "in April",
         "on Sunday morning", "in September", "yesterday evening", "in December",
         "on Wednesday", "last summer", "in January", "at midnight", "in October",
         "on Thursday", "at lunchtime", "in March", "on Saturday", "last autumn", "in June")
OPENERS = ("", "", "", "so", "well", "and", "honestly", "anyway")
# fmt: on


def _pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return str(items[int(rng.integers(len(items)))])


def sentence(rng: np.random.Generator) -> tuple[str, str]:
    """A sentence and its final phrase (what an echo repeats)."""
    noun = f"the {_pick(rng, ADJECTIVES)} {_pick(rng, NOUNS)}"
    place = f"{_pick(rng, PREPOSITIONS)} {_pick(rng, PLACES)}"
    tail = _pick(rng, TAILS)
    opener = _pick(rng, OPENERS)
    words = [opener, _pick(rng, SUBJECTS), _pick(rng, VERBS), noun, place, tail]
    text = " ".join(w for w in words if w)
    last_place = place.split()[-1]
    final = f"the {last_place} {tail}".strip() if rng.random() < 0.7 else noun
    if tail and final == noun:
        final = f"the {last_place} {tail}"
    return text[0].upper() + text[1:] + ".", final


def plan(rng: np.random.Generator, *, turns: int, echo_share: float) -> list[dict[str, Any]]:
    """Turns: speaker, sentences, and the planted echo (words, question) if any."""
    out: list[dict[str, Any]] = []
    last_final = ""
    for i in range(turns):
        speaker = i % 2
        echo = None
        sentences: list[str] = []
        if i > 0 and rng.random() < echo_share:
            phrase = last_final[0].upper() + last_final[1:]
            question = bool(rng.random() < 0.5)
            echo = {"phrase": last_final, "question": question}
            sentences = [phrase + ("?" if question else ".")]
        n_more = 0 if echo and echo["question"] else (1 if echo else int(rng.integers(1, 3)))
        final = last_final
        for _ in range(n_more):
            text, final = sentence(rng)
            sentences.append(text)
        if n_more == 0:
            final = last_final  # an echo question ends on the echoed phrase itself
        out.append({"speaker": speaker, "sentences": sentences, "echo": echo, "final": final})
        last_final = final
    return out


def truth_echoes(turns: list[dict[str, Any]]) -> list[list[str]]:
    """Per turn, the content words its first sentence repeats from the partner's last
    sentence (planted or by chance); [] for none."""
    out: list[list[str]] = [[]]
    for prev, turn in zip(turns[:-1], turns[1:], strict=True):
        source = set(content_words(prev["sentences"][-1].lower().strip(".?").split()))
        first = content_words(turn["sentences"][0].lower().strip(".?").split())
        out.append(sorted({w for w in first if w in source}))
    return out


def _one(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    rng = np.random.default_rng(job["seed_seq"])
    turns = plan(rng, turns=job["turns"], echo_share=job["echo_share"])
    specs = [
        sc.TurnSpec(
            speaker=t["speaker"],
            text=tuple(t["sentences"]),
            gap_s=float(rng.uniform(0.3, 0.9)),
            pause_s=0.35,
        )
        for t in turns
    ]
    call = sc.render_call(specs, rng=rng)
    out_dir = Path(job["out_dir"])
    stem = job["stem"]
    sc.write_wav(out_dir / f"{stem}.wav", call, encoding="mulaw")
    echoed = truth_echoes(turns)
    truth = {
        "kind": job["kind"],
        "seed": list(job["seed_seq"]),
        "duration_s": round(call.duration_s, 3),
        "espeak": sc.espeak_version(),
        "turns": [
            {
                "speaker": t["speaker"],
                "start_s": round(tt.start_s, 3),
                "end_s": round(tt.end_s, 3),
                "sentences": t["sentences"],
                "planted": t["echo"],
                "echo_words": echoed[i],
                "echo_question": bool(t["echo"] and t["echo"]["question"]),
            }
            for i, (t, tt) in enumerate(zip(turns, call.turns, strict=True))
        ],
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(truth, indent=1))
    return {
        "stem": stem,
        "wav": f"{stem}.wav",
        "truth": f"{stem}.json",
        "kind": job["kind"],
        "duration_s": round(call.duration_s, 2),
        "turns": len(turns),
        "echoes": sum(bool(e) for e in echoed),
        "planted": sum(bool(t["echo"]) for t in turns),
        "echo_questions": sum(bool(t["echo"] and t["echo"]["question"]) for t in turns),
        "render_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n", type=int, default=4, help="calls of each kind (echo, plain)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--turns", type=int, default=40, help="turns per call")
    ap.add_argument("--echo-share", type=float, default=0.35, help="answers planted as echoes")
    ap.add_argument("--workers", type=int, default=1, help="calls rendered in parallel")
    args = ap.parse_args(argv)
    if not sc.espeak_available():
        print("error: espeak-ng is not on PATH (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "kind": kind,
            "stem": f"{kind}_{i}",
            "seed_seq": (args.seed, k, i),
            "turns": args.turns,
            "echo_share": args.echo_share if kind == "echo" else 0.0,
            "out_dir": str(args.out_dir),
        }
        for k, kind in enumerate(("echo", "plain"))
        for i in range(args.n)
    ]
    rows = []
    if args.workers > 1:
        with cf.ProcessPoolExecutor(max_workers=args.workers) as pool:
            for row in pool.map(_one, jobs):
                rows.append(row)
                print(json.dumps(row), flush=True)
    else:
        for job in jobs:
            rows.append(_one(job))
            print(json.dumps(rows[-1]), flush=True)
    (args.out_dir / "index.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
