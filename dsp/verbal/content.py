"""Content words: what an echo or lexical mirroring can repeat. Function words, fillers and
the commonest conversational verbs repeat by chance in any two turns, so they never count."""

from __future__ import annotations

from collections.abc import Iterable

# fmt: off
_STOPWORD_TEXT = """
a about above after again against all also am an and any are aren't around as at back be
because been before being below between both but by can can't cannot could couldn't did
didn't do does doesn't doing don't down during each either else even ever every few for
from further get gets getting go goes going gone got had hadn't has hasn't have haven't
having he he'd he'll he's her here here's hers herself him himself his how how's i i'd
i'll i'm i've if in into is isn't it it's its itself just let let's like maybe me might
mine more most much must mustn't my myself need no nor not now of off oh ok okay on once
one only or other ought our ours ourselves out over own please quite rather really right
said same say says see shan't she she'd she'll she's should shouldn't so some still such
sure take tell than thank thanks that that's the their theirs them themselves then there
there's these they they'd they'll they're they've thing things think this those though
through to too under until up upon us very want was wasn't way we we'd we'll we're we've
well were weren't what what's when when's where where's whether which while who who's
whom why why's will with won't would wouldn't yeah yep yes yet you you'd you'll you're
you've your yours yourself yourselves uh um uhm hmm mm mhm huh ah er erm hi hello bye
know mean make made put come came give gave look thing stuff kind sort lot bit actually
across along among behind beside besides beyond inside outside near towards toward onto
within without anyway honestly
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# fmt: on

#: Shorter words are too often misrecognised function words to count as content.
MIN_LETTERS = 3


def is_content(word: str) -> bool:
    w = word.lower()
    return len(w) >= MIN_LETTERS and w not in STOPWORDS and w.replace("'", "").isalpha()


def content_words(words: Iterable[str]) -> list[str]:
    """The content words of ``words`` (lower case), in order."""
    return [w.lower() for w in words if is_content(w)]
