#!/usr/bin/env python3
"""Writes corpus.txt: a small synthetic English-like corpus for `make demo` (public domain:
generated here, no third-party text). Deterministic: standard library only, fixed seed.

    python3 testdata/sample/make_corpus.py > testdata/sample/corpus.txt
"""
import random

rng = random.Random(20261122)
animals = ["cat", "dog", "mouse", "horse", "bird", "fox", "rabbit", "owl", "wolf", "sheep"]
foods = ["cheese", "bread", "apples", "grain", "fish", "seeds", "carrots", "milk"]
places = ["barn", "forest", "river", "garden", "meadow", "kitchen", "hill", "village"]
adjs = ["quick", "lazy", "small", "old", "young", "hungry", "quiet", "clever", "brown", "white"]
verbs_animal = ["chases", "watches", "follows", "ignores", "fears", "greets"]
verbs_food = ["eats", "steals", "hides", "finds", "smells"]
# Preferences make the co-occurrence statistics worth looking at.
likes = {"cat": ["mouse", "fish", "milk"], "dog": ["cat", "bread"], "mouse": ["cheese", "grain"],
         "horse": ["apples", "carrots"], "bird": ["seeds", "grain"], "fox": ["rabbit", "bird"],
         "rabbit": ["carrots"], "owl": ["mouse"], "wolf": ["sheep", "rabbit"], "sheep": ["grain"]}
habitat = {"cat": "kitchen", "dog": "village", "mouse": "barn", "horse": "meadow", "bird": "garden",
           "fox": "forest", "rabbit": "meadow", "owl": "forest", "wolf": "hill", "sheep": "meadow"}


def noun_phrase(noun):
    if rng.random() < 0.5:
        return f"the {rng.choice(adjs)} {noun}"
    return f"the {noun}"


def sentence():
    a = rng.choice(animals)
    target = rng.choice(likes[a]) if rng.random() < 0.7 else rng.choice(animals + foods)
    verb = rng.choice(verbs_animal if target in animals else verbs_food)
    place = habitat[a] if rng.random() < 0.6 else rng.choice(places)
    s = f"{noun_phrase(a)} {verb} {noun_phrase(target)} in the {place}"
    if rng.random() < 0.3:
        s += f" and then sleeps near the {rng.choice(places)}"
    return s


# A long tail of rarer words with Zipfian frequencies, as in real text: enough distinct
# word pairs that `make demo` runs its small memory budget out and evicts.
syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "dra", "gu", "ben", "tor", "lis", "mar"]
tail = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(40000)})
rng.shuffle(tail)
cum, total = [], 0.0
for rank in range(len(tail)):
    total += 1.0 / (rank + 1)
    cum.append(total)


def tail_words(n):
    out = []
    for _ in range(n):
        x = rng.random() * total
        lo, hi = 0, len(cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        out.append(tail[lo])
    return out


for _ in range(20000):
    line = " ".join(sentence() for _ in range(rng.randint(1, 3)))
    print(line + " while " + " ".join(tail_words(rng.randint(4, 12))))
