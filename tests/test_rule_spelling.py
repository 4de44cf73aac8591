"""One spelling of a decision rule everywhere: the name `people list` prints (a rule's ``key()``, e.g.
``margin:both:w=0.5``) is accepted wherever a rule is given: FACEBANK_DECISION and `benchmark
lfw-openset/openset --rules`; the long form (``margin:combine=both,weight=0.5``) still works."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from facebank.cli import app
from facebank.decide import parse
from facebank.evaluate.openset import STANDARD_RULES, rules_for
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.gallery.sqlite import SqliteGallery
from facebank.settings import Settings

SPECS = [*STANDARD_RULES, Settings().decision, "margin:weight=1,combine=mean", "tnorm:cohort=5",
         "znorm:combine=both", "spread:combine=mean", "margin:both:w=0.25"]


def fields(rule) -> dict:
    return {f.name: getattr(rule, f.name) for f in dataclasses.fields(rule) if not f.name.startswith("_")}


@pytest.mark.parametrize("spec", SPECS)
def test_every_rule_reads_back_its_own_key(spec):
    rule = parse(spec)
    again = parse(rule.key())
    assert type(again) is type(rule) and fields(again) == fields(rule)
    assert again.key() == rule.key()


def test_the_short_and_the_long_spelling_are_one_rule():
    assert fields(parse("margin:both:w=0.5")) == fields(parse("margin:combine=both,weight=0.5"))
    assert fields(parse("tnorm:mean:k=7")) == fields(parse("tnorm:combine=mean,cohort=7"))


@pytest.mark.parametrize("bad", ["margin:sideways", "margin:both:x=1", "margin:w=abc", "nosuchrule"])
def test_a_bad_rule_is_still_refused(bad):
    with pytest.raises(ValueError):
        parse(bad)


def test_the_rule_people_list_prints_is_accepted_where_rules_are_given(tmp_path, monkeypatch):
    db = tmp_path / "g.db"
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 128))
    items = []
    for p, centre in enumerate(centres):
        for k in range(3):
            v = (centre + 0.3 * rng.normal(size=128)).astype(np.float32)
            items.append((PhotoRecord(f"person{p}", f"/x/{p}-{k}.jpg", f"{p:02d}{k:062d}", 5, 10, 10, "ok"),
                          [FaceRecord((0, 0, 10, 10), v / np.linalg.norm(v), "test", 1.0)]))
    with SqliteGallery(db) as g:
        g.add_photos(items, "m1")
    monkeypatch.delenv("FACEBANK_DECISION", raising=False)
    first = CliRunner().invoke(app, ["people", "list", "-g", str(db)])
    assert first.exit_code == 0, first.output
    printed = re.search(r"rule (\S+),", first.output).group(1)
    assert printed == parse(Settings().decision).key()  # e.g. margin:both:w=0.5
    (rule,) = rules_for(printed, Settings().decision)  # what benchmark ... --rules does with it
    assert rule.key() == printed
    monkeypatch.setenv("FACEBANK_DECISION", printed)
    again = CliRunner().invoke(app, ["people", "list", "-g", str(db)])
    assert again.exit_code == 0, again.output
    assert f"rule {printed}," in again.output
