"""An offline fact corpus in FTRACE-TREX's schema, generated from a seeded table of invented facts.

Abstracts (the training set) state 1-3 facts about one subject, with one object masked as T5 span
corruption does; queries (the test set) ask for one fact in a paraphrase template that no abstract
uses. A query's proponents are the abstracts whose ``facts`` contain its (predicate, subject, object),
exactly as in FTRACE-TREX. Names are invented, so a model can only know a fact from these abstracts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BLANK = "<extra_id_0>"

# predicate -> (subject kind, object kind, abstract templates, query templates).
# Query templates end with the object and never occur in abstracts (they are paraphrases).
RELATIONS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "P19": ("person", "city",
            ("{s} was born in {o} .", "{s} , a native of {o} , grew up there ."),
            ("Records show that {s} was born in {o} .", "As far as we know {s} was born in {o} .")),
    "P27": ("person", "country",
            ("{s} is a citizen of {o} .", "{s} holds the citizenship of {o} ."),
            ("It is known that {s} is a citizen of {o} .", "By law {s} is a citizen of {o} .")),
    "P106": ("person", "occupation",
             ("{s} works as a {o} .", "{s} earned a living as a {o} ."),
             ("By profession {s} works as a {o} .", "Today {s} works as a {o} .")),
    "P17": ("city", "country",
            ("{s} is a city in {o} .", "The city of {s} lies in {o} ."),
            ("On the map {s} is a city in {o} .", "Travellers say that {s} is a city in {o} .")),
}
# Openers vary where a fact sits in an abstract, so a model must bind subject and object, not positions.
OPENERS = ("", "", "According to the register ,", "In the archives ,", "As the chronicle notes ,",
           "Historians agree that", "In short ,", "Local sources say that")
OCCUPATIONS = ("painter", "chemist", "sailor", "poet", "farmer", "judge", "baker", "pilot", "weaver",
               "miner", "doctor", "singer", "potter", "tailor", "hunter", "priest")
ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kr", "st", "tr")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
CODAS = ("", "n", "r", "l", "k", "s", "th", "m")


@dataclass
class FactCorpus:
    """Abstracts and queries as lists of rows in FTRACE-TREX's schema, plus the fact table."""

    abstracts: list[dict] = field(default_factory=list)
    queries: list[dict] = field(default_factory=list)
    facts: list[tuple[str, str, str]] = field(default_factory=list)  # (predicate, subject uri, object uri)
    labels: dict[str, str] = field(default_factory=dict)  # uri -> surface name

    def proponents(self) -> dict[str, set[str]]:
        """query uuid -> ids of the abstracts stating its fact."""
        stated: dict[tuple[str, str, str], set[str]] = {}
        for abstract in self.abstracts:
            for fact in abstract["facts"].split(";"):
                stated.setdefault(tuple(fact.split(",")), set()).add(abstract["id"])
        return {
            q["uuid"]: stated.get((q["predicate_id"], q["sub_uri"], q["obj_uri"]), set()) for q in self.queries
        }


def _names(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    out = []
    while len(out) < count:
        syllables = rng.choice((2, 2, 3))
        name = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + rng.choice(CODAS)
        name = name.capitalize()
        if name not in taken and 4 <= len(name) <= 10:
            taken.add(name)
            out.append(name)
    return out


def generate_fact_corpus(
    *,
    people: int = 30,
    cities: int = 30,
    countries: int = 30,
    abstracts_per_subject: int = 3,
    queries: int = 80,
    seed: int = 0,
) -> FactCorpus:
    """A seeded corpus: every fact is stated by at least one abstract; queries sample the facts."""
    rng = random.Random(seed)
    taken: set[str] = set()
    corpus = FactCorpus()
    entities: dict[str, list[str]] = {}
    for kind, count in (("person", people), ("city", cities), ("country", countries)):
        names = _names(rng, count, taken)
        entities[kind] = []
        for name in names:
            uri = f"Q{len(corpus.labels) + 100}"
            corpus.labels[uri] = name
            entities[kind].append(uri)
    entities["occupation"] = []
    for job in OCCUPATIONS:
        uri = f"Q{len(corpus.labels) + 100}"
        corpus.labels[uri] = job
        entities["occupation"].append(uri)

    by_subject: dict[str, list[tuple[str, str, str]]] = {}
    for predicate, (subject_kind, object_kind, _, _) in RELATIONS.items():
        # objects dealt round-robin: no object is a much better guess than another
        objects = []
        while len(objects) < len(entities[subject_kind]):
            objects += rng.sample(entities[object_kind], k=len(entities[object_kind]))
        for subject, obj in zip(entities[subject_kind], objects[: len(entities[subject_kind])], strict=True):
            fact = (predicate, subject, obj)
            corpus.facts.append(fact)
            by_subject.setdefault(subject, []).append(fact)

    for subject, facts in by_subject.items():
        # the first abstracts together state every fact of the subject; later ones repeat some
        pending = list(facts)
        rng.shuffle(pending)
        for index in range(abstracts_per_subject if len(facts) > 1 else 2):
            if pending:
                stated = [pending.pop()]
                if pending and rng.random() < 0.5:
                    stated.append(pending.pop())
            else:
                stated = rng.sample(facts, k=rng.randint(1, min(3, len(facts))))
            corpus.abstracts.append(_abstract(rng, corpus, f"{subject}_{index}", stated))

    for number, fact in enumerate(rng.sample(corpus.facts, k=min(queries, len(corpus.facts)))):
        predicate, subject, obj = fact
        template = rng.choice(RELATIONS[predicate][3])
        text = template.format(s=corpus.labels[subject], o=BLANK)
        corpus.queries.append({
            "inputs_pretokenized": text,
            "targets_pretokenized": f"{BLANK} {corpus.labels[obj]}",
            "uuid": f"query-{number:04d}",
            "predicate_id": predicate,
            "sub_uri": subject,
            "obj_uri": obj,
            "sub_label": corpus.labels[subject],
            "obj_label": corpus.labels[obj],
        })
    return corpus


def _abstract(rng: random.Random, corpus: FactCorpus, key: str, facts: list[tuple[str, str, str]]) -> dict:
    """One abstract stating `facts`; the object of one of them is masked."""
    masked = rng.randrange(len(facts))
    sentences = []
    for index, (predicate, subject, obj) in enumerate(facts):
        template = rng.choice(RELATIONS[predicate][2])
        name = BLANK if index == masked else corpus.labels[obj]
        opener = rng.choice(OPENERS)
        sentence = template.format(s=corpus.labels[subject], o=name)
        sentences.append(f"{opener} {sentence}" if opener else sentence)
    masked_uri = facts[masked][2]
    return {
        "inputs_pretokenized": " ".join(sentences),
        "targets_pretokenized": f"{BLANK} {corpus.labels[masked_uri]}",
        "masked_uri": masked_uri,
        "masked_type": RELATIONS[facts[masked][0]][1],
        "facts": ";".join(",".join(fact) for fact in facts),
        "id": f"abstract-{key}",
        "example_uris": ";".join(sorted({s for _, s, _ in facts})),
        "page_uri": facts[0][1],
    }
